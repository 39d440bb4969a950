"""Helpers for integration tests that start real odop processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from odop.procs import pid_alive
from odop.store.executions import RunStore

SIM = '''
import json, os, sys
import odop

@odop.task(name="record", time="5s", cpus=1)
def record(out, sleep=0.0):
    import time
    time.sleep(sleep)
    with open("/proc/self/status") as fh:
        allowed = [l.split(":")[1].strip() for l in fh if l.startswith("Cpus_allowed_list")][0]
    info = {"allowed": allowed, "affinity": sorted(os.sched_getaffinity(0)),
            "execution": os.environ["ODOP_EXECUTION"], "t": time.time()}
    with open(out, "w") as fh:
        json.dump(info, fh)

if __name__ == "__main__":
    out, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    comm = None
    if mode.startswith("mpi"):
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    rank = comm.rank if comm else 0
    run = odop.start(run_name=os.environ.get("RUN_NAME"))
    ids = [odop.submit("record", out=f"{out}/r{rank}-{i}.json",
                       sleep=float(os.environ.get("TASK_SLEEP", "0"))) for i in range(n)]
    print(json.dumps({"rank": rank, "run": str(run.root), "ids": ids}), flush=True)
    if os.environ.get("NO_STOP"):
        import time
        time.sleep(float(os.environ.get("LINGER", "0")))
        sys.exit(0)
    summary = odop.stop()
    if rank == 0:
        print(json.dumps({"summary": summary}), flush=True)
'''


def write_sim(folder: Path) -> Path:
    path = folder / "sim.py"
    path.write_text(SIM)
    return path


def executions(run_dir: Path) -> list[dict[str, Any]]:
    store = RunStore(run_dir / "odop.db", readonly=True)
    try:
        return store.all()
    finally:
        store.close()


def components(run_dir: Path) -> list[dict[str, Any]]:
    store = RunStore(run_dir / "odop.db", readonly=True)
    try:
        return store.components()
    finally:
        store.close()


def odop_pids(run_dir: Path) -> list[int]:
    """Pids of the run's scheduler, agents and tasks."""
    pids = [c["pid"] for c in components(run_dir)]
    return pids + [e["pid"] for e in executions(run_dir) if e["pid"]]


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if pid_alive(p)]


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
