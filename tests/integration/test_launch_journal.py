"""The submission journal: unacknowledged submissions survive in the run folder."""

from __future__ import annotations

import stat
from pathlib import Path

from odop.launch import journal
from odop.protocol import MsgType, make


def test_pending_is_submitted_minus_acked(tmp_path: Path) -> None:
    jnl = journal.Journal(tmp_path / "journal" / "n-r0.jnl")
    msgs = [make(MsgType.SUBMIT, execution=f"e{i}", task="t", args={"i": i}, rank=0)
            for i in range(3)]
    for msg in msgs:
        jnl.submitted(msg)
    jnl.acked(msgs[1]["id"])
    jnl.close()
    assert stat.S_IMODE(jnl.path.stat().st_mode) == 0o600
    assert [m["execution"] for m in journal.pending(jnl.path)] == ["e0", "e2"]
    assert [m["args"] for m in journal.pending_in_run(tmp_path)] == [{"i": 0}, {"i": 2}]


def test_torn_tail_is_skipped(tmp_path: Path) -> None:
    jnl = journal.Journal(tmp_path / "j.jnl")
    jnl.submitted(make(MsgType.SUBMIT, execution="e", task="t", args={}, rank=0))
    jnl.close()
    with open(jnl.path, "ab") as fh:
        fh.write(b"\x00\x00\x01\x00abc")
    assert len(journal.pending(jnl.path)) == 1
