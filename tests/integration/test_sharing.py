"""A waiting rank shares its core: a task runs beside it at idle priority, and is taken
back (paused) as soon as a sample shows the rank busy again."""

from __future__ import annotations

import json
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
    with open(marker, "w") as f:
        json.dump({"idle": os.sched_getscheduler(0) == os.SCHED_IDLE,
                   "cores": sorted(os.sched_getaffinity(0))}, f)
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def wait_for(paths, timeout=60.0):
    end = time.time() + timeout
    while not all(os.path.exists(p) for p in paths) and time.time() < end:
        time.sleep(0.02)

if __name__ == "__main__":
    os.sched_setaffinity(0, {0})                  # this rank is bound to core 0
    run = odop.start(config={"sample_interval_s": 0.2})
    time.sleep(0.8)                               # waiting: core 0 becomes shared
    ids = [odop.submit("spin", seconds=2.0, marker=f"m{i}") for i in range(2)]
    wait_for(["m0", "m1"])                        # both run: core 1, and core 0 shared
    busy_from = time.time()
    end = time.process_time() + 1.5               # the rank computes: core 0 taken back
    while time.process_time() < end:
        pass
    summary = odop.stop()
    print(json.dumps({"run": str(run.root), "ids": ids, "busy_from": busy_from,
                      "summary": summary}))
'''


def test_a_waiting_rank_shares_its_core_until_it_computes(tmp_path: Path,
                                                          odop_home: Path) -> None:
    out = run_script(tmp_path, SIM)
    assert out["summary"]["done"] == 2
    seen = [json.loads((tmp_path / f"m{i}").read_text()) for i in range(2)]
    assert sorted(s["cores"] for s in seen) == [[0], [1]]
    assert all(s["idle"] for s in seen), "tasks must run at idle priority"
    store = RunStore(Path(out["run"]) / "odop.db", readonly=True)
    histories = [store.history(e) for e in out["ids"]]
    store.close()
    on_zero = next(h for h in histories if any(d.endswith("[0]") for _, s, d in h
                                               if s == "placed"))
    paused = [(t, d) for t, s, d in on_zero if s == "paused"]
    assert paused and "stopped waiting" in paused[0][1], on_zero
    assert paused[0][0] >= out["busy_from"]
    assert on_zero[-1][1] == "done"
