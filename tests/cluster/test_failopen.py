"""Item 6 of issue 21: fail-open across nodes. An embedded 2-node job (one rank per node,
``srun``) has odop's scheduler (on node 1), or node 2's agent, SIGKILLed mid-run: the
simulation on both nodes exits 0 with the checksum of an undisturbed run, the killed
daemon is started again by the rank that keeps it, and every task submitted is done."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from odop.testing.cluster import Cluster
from tests.cluster.jobs import sbatch_start, sbatch_wait

pytestmark = pytest.mark.timeout(180)
STEPS = 6
HOLD = 2
"""The step at which each rank waits (bounded) for the test's kill."""

SIM = f'''
import hashlib, json, os, sys, time
import odop

def checksum(rank, steps):
    h = hashlib.sha256()
    for step in range(steps):
        h.update(f"{{rank}}:{{step}}:{{sum(i * i for i in range(20000 + step))}}".encode())
    return h.hexdigest()

@odop.task(name="post", time="2s", cpus=1)
def post(step):
    time.sleep(0.3)

if __name__ == "__main__":
    from mpi4py import MPI
    rank = MPI.COMM_WORLD.rank
    odop.start(run_name=sys.argv[1])
    for step in range({STEPS}):
        if step == {HOLD}:
            open(f"ready-{{rank}}", "w").close()
            end = time.monotonic() + 60
            while not os.path.exists("killed") and time.monotonic() < end:
                time.sleep(0.1)
        odop.submit("post", step=step)
        time.sleep(0.3)
    print(json.dumps({{"rank": rank, "checksum": checksum(rank, {STEPS}),
                      "summary": odop.stop()}}), flush=True)
'''

SCRIPT = """#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --time=00:05:00
export ODOP_HOME=$SLURM_SUBMIT_DIR/.odop
srun --cpu-bind=cores python sim.py "failopen-$SLURM_JOB_ID"
"""


def undisturbed(rank: int) -> str:
    """The checksum rank ``rank`` prints (the simulation's own computation, without odop)."""
    h = hashlib.sha256()
    for step in range(STEPS):
        h.update(f"{rank}:{step}:{sum(i * i for i in range(20000 + step))}".encode())
    return h.hexdigest()


def _victim_pid(run: Path, victim: str) -> int:
    """The live pid of the scheduler (from its component record) or of node 2's agent."""
    if victim == "agent":
        return int((run / "agents" / "odop2.pid").read_text().split()[0])
    from odop.store.executions import RunStore

    store = RunStore(run / "odop.db", readonly=True)
    try:
        rows = [c for c in store.components() if c["role"] == "scheduler" and not c["ended_at"]]
    finally:
        store.close()
    return int(rows[-1]["pid"])


def _wait_for(path: Path, proc: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"sbatch ended early ({proc.poll()})"  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, f"no {path.name} after {timeout_s} s"
        time.sleep(0.1)


@pytest.mark.parametrize("victim", ["scheduler", "agent"])
def test_simulation_finishes_as_undisturbed(cluster: Cluster, tmp_path: Path,
                                            victim: str) -> None:
    (tmp_path / "sim.py").write_text(SIM)
    proc = sbatch_start(cluster, tmp_path, SCRIPT)
    for rank in (0, 1):
        _wait_for(tmp_path / f"ready-{rank}", proc)
    run = next((tmp_path / ".odop" / "runs").iterdir())
    pid = _victim_pid(run, victim)
    os.kill(pid, signal.SIGKILL)
    (tmp_path / "killed").touch()
    _, out = sbatch_wait(proc, tmp_path)
    results = [json.loads(line) for line in out.splitlines() if line.startswith('{"rank"')]
    assert sorted(r["rank"] for r in results) == [0, 1], out
    for result in results:
        assert result["checksum"] == undisturbed(result["rank"]), out
    assert f"{victim} exited (-9); starting it again" in out  # its keeper saw the kill
    account = next(r for r in results if r["rank"] == 0)["summary"]["account"]
    assert account["unaccounted"] == 0 and account["done"] == 2 * STEPS, account
