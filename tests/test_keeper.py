"""Keeper: a daemon that keeps dying at its start is started no more, with the cause said
once; one killed by a signal is always started again."""

from __future__ import annotations

import subprocess
import sys

from odop.launch.failopen import MAX_EARLY, Keeper


def _spawn(code: str):
    return lambda: subprocess.Popen([sys.executable, "-c", code])


def test_early_exits_in_a_row_give_up_with_the_cause(caplog) -> None:
    keeper = Keeper("scheduler", _spawn("raise SystemExit(1)"),
                    lambda code, early: f"died {early} times" if early >= MAX_EARLY else None)
    for _ in range(MAX_EARLY + 2):
        assert keeper.proc is not None
        keeper.proc.wait()
        keeper.check(force=True)
    assert keeper.gave_up == f"died {MAX_EARLY} times"
    assert keeper.respawns == MAX_EARLY - 1
    assert sum("It is not started again" in r.message for r in caplog.records) == 1


def test_a_killed_daemon_is_always_started_again() -> None:
    keeper = Keeper("agent", _spawn("import time; time.sleep(30)"),
                    lambda code, early: "gave up" if early else None)
    for _ in range(MAX_EARLY + 1):
        assert keeper.proc is not None
        keeper.proc.kill()
        keeper.proc.wait()
        assert keeper.check(force=True)
    assert keeper.gave_up is None
    keeper.proc.kill()
