"""Phase marks in a real run: a rank's core is lent during its io phase and taken back at
once when the phase ends (the task is paused, then resumed elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from odop.store.executions import RunStore
from tests.integration.helpers import run_script

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")]

SIM = '''
import json, os, time, odop

@odop.task(name="spin", time="20s", cpus=1, preempt="pause")
def spin(seconds, marker):
    open(marker, "w").close()
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def wait_for(path, timeout=60.0):
    end = time.time() + timeout
    while not os.path.exists(path) and time.time() < end:
        time.sleep(0.02)

if __name__ == "__main__":
    os.sched_setaffinity(0, {0})                 # this rank is bound to core 0
    # lending alone: a sleeping rank's core would otherwise be shared before the phase
    run = odop.start(config={"sample_interval_s": 0.2, "share_bound_cores": False})
    first = odop.submit("spin", seconds=3.0, marker="m1")
    wait_for("m1")                               # first task holds core 1
    second = odop.submit("spin", seconds=1.0, marker="m2")
    with odop.phase("io"):                       # first io phase: learned, lends nothing
        time.sleep(1.2)                          # no idle core: second waits
    with odop.phase("io"):
        wait_for("m2")                           # core 0 lent: second runs there
        time.sleep(0.2)
    end_of_phase = time.time()
    time.sleep(0.5)
    summary = odop.stop()
    print(json.dumps({"run": str(run.root), "second": second, "phase_end": end_of_phase,
                      "summary": summary}))
'''


def test_io_phase_lends_core_and_takes_it_back(tmp_path: Path, odop_home: Path) -> None:
    out = run_script(tmp_path, SIM)
    assert out["summary"]["done"] == 2
    store = RunStore(Path(out["run"]) / "odop.db", readonly=True)
    history = store.history(out["second"])
    phases = store.conn.execute("SELECT phase, active FROM phases").fetchall()
    store.close()
    states = [state for _, state, _ in history]
    assert [tuple(p) for p in phases] == [("io", 1), ("io", 0)] * 2
    placed = next(detail for _, state, detail in history if state == "placed")
    assert placed.endswith("[0]"), f"second task should borrow core 0, got {placed}"
    paused_at = next(t for t, state, _ in history if state == "paused")
    assert paused_at - out["phase_end"] < 1.0, "not taken back within one sample period"
    assert states[-1] == "done" and states.count("running") >= 2
