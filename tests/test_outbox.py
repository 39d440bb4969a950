"""The client's outbox: bounded work per call whatever the backlog, nothing but probes to a
silent peer, memory bounded by spilling to the journal, and every message delivered once
the peer answers, in order, each held once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from odop.launch import journal as journal_mod
from odop.launch import outbox as outbox_mod
from odop.launch.journal import Journal
from odop.launch.outbox import PROBE_S, SILENT_S, SLICE, Outbox
from odop.protocol import MsgType, make


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(outbox_mod, "time", c)
    return c


def submission(n: int) -> dict[str, Any]:
    return make(MsgType.SUBMIT, execution=f"e{n}", task="t", args={"n": n}, rank=0)


def ack_all(box: Outbox, wire: list[dict[str, Any]]) -> None:
    for msg in wire:
        box.acked(msg["id"])
    box.heard(outbox_mod.time.monotonic())


def test_a_silent_peer_gets_only_probes_then_everything_once_it_answers(clock: Clock) -> None:
    wire: list[dict[str, Any]] = []
    box = Outbox(lambda m: wire.append(m) is None)
    box.add(submission(0))
    assert len(wire) == 1  # the way is clear: sent at once
    clock.now += SILENT_S + 0.1
    assert box.silent()
    for n in range(1, 5000):
        box.add(submission(n))
    sent = len(wire)
    for _ in range(100):  # 100 calls over 10 s of silence
        clock.now += 0.1
        box.tend()
    assert len(wire) - sent <= 10 / PROBE_S + 1  # probes, no resend storm
    box.heard(clock.now)  # it answers again
    ack_all(box, wire)
    while box:
        clock.now += 0.01
        before = len(wire)
        box.tend()
        assert len(wire) - before <= SLICE  # bounded work per call
        ack_all(box, wire[before:])
    assert {m["args"]["n"] for m in wire} == set(range(5000))


def test_resend_is_paced_and_refusals_keep_the_order(clock: Clock) -> None:
    wire: list[dict[str, Any]] = []
    accept = [True]
    box = Outbox(lambda m: accept[0] and wire.append(m) is None)
    accept[0] = False
    for n in range(10):
        box.add(submission(n))
    accept[0] = True
    box.tend()
    assert [m["args"]["n"] for m in wire] == list(range(10))  # refused ones went first


def test_spilled_submissions_come_back_from_the_journal_in_order(
        clock: Clock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox_mod, "MEMORY_MAX", 100)
    wire: list[dict[str, Any]] = []
    journal = Journal(tmp_path / "journal" / "r0.jnl")
    box = Outbox(lambda m: wire.append(m) is None, journal)
    for n in range(1000):
        assert box.add(submission(n), journal=True)
    assert len(box.held) == 100 and box.spilled == 900 and len(box) == 1000
    seen = 0
    while box:
        for msg in wire[seen:]:
            box.acked(msg["id"])
            journal.acked(msg["id"])
        seen = len(wire)
        box.heard(clock.now)
        clock.now += 0.01
        box.tend()
        assert len(box.held) <= 100
    assert [m["args"]["n"] for m in wire] == list(range(1000))  # each once, in order
    assert journal_mod.pending(journal.path) == []


def test_a_journal_read_back_goes_on_in_its_fallback_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_mod.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    journal = Journal(tmp_path / "run" / "journal" / "r0.jnl")
    start = journal.tell()
    journal.submitted(submission(0))
    journal._move()  # as when the run folder takes no more writes
    journal.submitted(submission(1))
    journal.acked("x")
    journal.submitted(submission(2))
    got, cursor = journal.submissions_from(start, 2)
    assert [m["args"]["n"] for m in got] == [0, 1]
    rest, _ = journal.submissions_from(cursor, 10)
    assert [m["args"]["n"] for m in rest] == [2]
