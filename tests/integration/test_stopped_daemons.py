"""A scheduler or an agent that is stopped (SIGSTOP), not killed, under mpiexec -n 2.

- The scheduler stopped for 10 s mid-run, then continued: the simulation exits 0 with the
  checksum it has without odop, and every submission is done exactly once (one execution,
  attempt 0, one line written by its task).
- The node's agent stopped until the end: ``odop.stop()`` still returns with the default
  config (no drain bound): the node goes stale, and the drain with no agent left ends
  after ``ORPHAN_S``, with every submission accounted for (what the agent never ran
  stays queued in the database).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from odop.scheduler.liveness import ORPHAN_S
from tests.conftest import child_env, mpiexec
from tests.integration.helpers import field_checksum, odop_process

pytestmark = [pytest.mark.slow, pytest.mark.mpi, pytest.mark.timeout(240),
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]

STEPS, PER_STEP = 60, 5
SIM = f'''
import json, os, sys, time
import numpy as np
import odop
from mpi4py import MPI

@odop.task(name="note", time="5s", cpus=1)
def note(path):
    with open(path, "a") as fh:
        fh.write(os.environ["ODOP_EXECUTION_ID"] + "\\n")

if __name__ == "__main__":
    comm = MPI.COMM_WORLD
    out, config = sys.argv[1], json.loads(sys.argv[2])
    odop.start(config=config)
    if comm.rank == 0:
        open(os.path.join(out, "started"), "w").close()
    field = np.arange(100.0) + comm.rank
    worst = 0.0
    for step in range({STEPS}):
        field = np.sqrt(field * field + 1.0)
        for k in range({PER_STEP}):
            t0 = time.perf_counter()
            odop.submit("note", path=os.path.join(out, f"r{{comm.rank}}-{{step}}-{{k}}"))
            worst = max(worst, time.perf_counter() - t0)
        time.sleep(0.25)
    total = comm.allreduce(float(field.sum()))
    t0 = time.monotonic()
    summary = odop.stop()
    worst = comm.allreduce(worst, op=MPI.MAX)
    if comm.rank == 0:
        print(json.dumps({{"checksum": total, "summary": summary, "worst_submit_s": worst,
                          "stop_s": time.monotonic() - t0}}), flush=True)
'''




def start_sim(tmp_path: Path, home: Path, config: dict[str, object]) -> tuple[
        subprocess.Popen, Path]:
    (tmp_path / "sim.py").write_text(SIM)
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(mpiexec()), "-n", "2", sys.executable, str(tmp_path / "sim.py"), str(out),
            json.dumps(config)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=child_env(ODOP_HOME=str(home)))
    end = time.monotonic() + 60
    while not (out / "started").exists() and time.monotonic() < end:
        time.sleep(0.05)
    return proc, out


def stopped_for(proc: psutil.Process, seconds: float | None, sim: subprocess.Popen,
                ) -> tuple[str, str]:
    """SIGSTOP ``proc``; SIGCONT it after ``seconds`` (None: after the simulation ends)."""
    proc.send_signal(signal.SIGSTOP)
    try:
        if seconds is not None:
            time.sleep(seconds)
            os.kill(proc.pid, signal.SIGCONT)
        return sim.communicate(timeout=200)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)


def test_a_scheduler_stopped_for_10_s_loses_and_repeats_nothing(tmp_path: Path,
                                                                 odop_home: Path) -> None:
    sim, out = start_sim(tmp_path, odop_home, {"sample_interval_s": 0.5})
    scheduler = odop_process(odop_home, "scheduler")
    assert scheduler is not None
    time.sleep(2.0)  # mid-run: the ranks submit before, during and after the stop
    stdout, stderr = stopped_for(scheduler, 10.0, sim)
    assert sim.returncode == 0, stderr
    result = json.loads(stdout.splitlines()[-1])
    assert result["checksum"] == field_checksum(STEPS)
    account = result["summary"]["account"]
    total = 2 * STEPS * PER_STEP
    assert account["done"] == total and account["unaccounted"] == 0, account
    files = [p for p in out.iterdir() if p.name != "started"]
    assert len(files) == total
    db = next(odop_home.glob("runs/*/odop.db"))
    rows = sqlite3.connect(db).execute("SELECT state, attempt, COUNT(*) FROM executions "
                                       "GROUP BY state, attempt").fetchall()
    assert rows == [("done", 0, total)]
    twice = {p.name: p.read_text() for p in files if len(p.read_text().splitlines()) != 1}
    assert not twice, twice  # each ran once


def test_stop_returns_past_an_agent_stopped_until_the_end(tmp_path: Path,
                                                          odop_home: Path) -> None:
    sim, out = start_sim(tmp_path, odop_home, {"sample_interval_s": 0.5})  # no drain bound
    agent = odop_process(odop_home, "agent")
    assert agent is not None
    time.sleep(2.0)
    stdout, stderr = stopped_for(agent, None, sim)
    assert sim.returncode == 0, stderr
    result = json.loads(stdout.splitlines()[-1])
    assert result["checksum"] == field_checksum(STEPS)
    # the node goes stale (10 s), then the drain with no agent left ends (ORPHAN_S)
    assert result["stop_s"] < 10.0 + ORPHAN_S + 20.0, result
    summary = result["summary"]
    assert not summary["drained"]
    account = summary["account"]
    assert account["unaccounted"] == 0, account
