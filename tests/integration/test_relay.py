"""Ranks talk to their node's agent, which relays to the scheduler on its one connection.

- Two nodes on loopback (two agents named a and b, a tcp:// scheduler, one rank a node
  under mpiexec): the scheduler holds exactly one connection per node mid-run, and every
  submission is done once.
- Under mpiexec -n 2 on one node, the agent SIGKILLed mid-run (the leader rank's keeper
  starts it again) or SIGSTOPped for 7 s then continued (past the ranks' 5 s of patience,
  within the scheduler's 10 s): the ranks go straight to the scheduler meanwhile, the
  simulation exits 0 with its undisturbed checksum, and every submission is done exactly
  once (one execution, attempt 0, one line written by its task). Each is done once the
  tasks submitted so far have ended: a task running when its agent dies is run again
  (at-least-once), which is not what these tests are about.
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
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from odop.protocol import transport
from tests.conftest import child_env, mpiexec
from tests.integration.helpers import field_checksum, log_tails, odop_process, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.mpi, pytest.mark.timeout(300),
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]

STEPS, PER_STEP = 40, 4
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
    out = sys.argv[1]
    odop.start(config={{"sample_interval_s": 0.5}})
    field = np.arange(100.0) + comm.rank
    for step in range({STEPS}):
        field = np.sqrt(field * field + 1.0)
        for k in range({PER_STEP}):
            odop.submit("note", path=os.path.join(out, f"r{{comm.rank}}-{{step}}-{{k}}"))
        time.sleep(0.1)
        if step == {STEPS // 2}:  # mid-run: the test looks, then says go
            comm.Barrier()
            open(os.path.join(out, f"mid{{comm.rank}}"), "w").close()
            end = time.monotonic() + 60
            while not os.path.exists(os.path.join(out, "go")) and time.monotonic() < end:
                time.sleep(0.05)
    total = comm.allreduce(float(field.sum()))
    summary = odop.stop()
    if comm.rank == 0:
        print(json.dumps({{"checksum": total, "summary": summary}}), flush=True)
'''
TOTAL = 2 * STEPS * PER_STEP



def _odop(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "odop", *args],
                            env=child_env(ODOP_HOME=str(home)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.fixture
def loopback_nodes(odop_home: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """A tcp:// scheduler and the agents of nodes a and b, started by hand before the job."""
    sched = _odop(odop_home, "scheduler", "--run", "two", "--bind", "tcp://127.0.0.1:*")
    run = odop_home / "runs" / "two"
    procs = [sched]
    try:
        wait_for(lambda: transport.announced(run) is not None, 30, "the scheduler")
        procs += [_odop(odop_home, "agent", "--run", "two", "--node", node, "--interval",
                        "0.5") for node in ("a", "b")]
        for node in ("a", "b"):
            wait_for(lambda n=node: transport.announced(run, transport.relay_file(n)),
                     60, f"agent {node}'s relay")
        yield run, sched
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


def _finish(sim: subprocess.Popen, out: Path, run: Path) -> dict:
    (out / "go").touch()
    stdout, stderr = sim.communicate(timeout=200)
    assert sim.returncode == 0, stderr + log_tails(run)
    return json.loads(stdout.splitlines()[-1])


def _mid(out: Path, sim: subprocess.Popen) -> None:
    wait_for(lambda: (out / "mid0").exists() and (out / "mid1").exists()
             or sim.poll() is not None, 120, "mid-run")
    assert sim.poll() is None, sim.communicate()


def _done_once(out: Path, run: Path, result: dict) -> None:
    """The undisturbed checksum; every submission done once, by one execution."""
    assert result["checksum"] == field_checksum(STEPS)
    account = result["summary"]["account"]
    assert account["done"] == TOTAL and account["unaccounted"] == 0, account
    rows = sqlite3.connect(run / "odop.db").execute(
        "SELECT state, attempt, COUNT(*) FROM executions GROUP BY state, attempt").fetchall()
    assert rows == [("done", 0, TOTAL)]
    files = [p for p in out.iterdir() if p.name.startswith("r")]
    assert len(files) == TOTAL
    twice = {p.name: p.read_text() for p in files if len(p.read_text().splitlines()) != 1}
    assert not twice, twice


def _sim(tmp_path: Path, home: Path, argv_ranks: list[str]) -> tuple[subprocess.Popen, Path]:
    (tmp_path / "sim.py").write_text(SIM)
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(mpiexec()), *argv_ranks]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=child_env(ODOP_HOME=str(home)))
    return proc, out


def test_two_nodes_hold_one_scheduler_connection_each(
        tmp_path: Path, odop_home: Path, loopback_nodes: tuple[Path, subprocess.Popen]) -> None:
    run, sched = loopback_nodes
    script = [sys.executable, str(tmp_path / "sim.py"), str(tmp_path / "out")]
    sim, out = _sim(tmp_path, odop_home, [
        "-n", "1", "-env", "ODOP_NODE", "a", "-env", "ODOP_RUN", "two", *script, ":",
        "-n", "1", "-env", "ODOP_NODE", "b", "-env", "ODOP_RUN", "two", *script])
    try:
        _mid(out, sim)
        peers = [c for c in psutil.Process(sched.pid).net_connections("tcp")
                 if c.status == psutil.CONN_ESTABLISHED]
        agents = {psutil.Process(p.pid).cmdline()[-3] for p in psutil.Process().children()
                  if "agent" in " ".join(p.cmdline())}
        result = _finish(sim, out, run)
    finally:
        with contextlib.suppress(ProcessLookupError):
            sim.kill()
    assert agents == {"a", "b"}
    assert len(peers) == 2, peers  # one a node: the ranks' go through their agents
    _done_once(out, run, result)



def _one_node(tmp_path: Path, home: Path) -> tuple[subprocess.Popen, Path, Path]:
    """The simulation under mpiexec -n 2, at mid-run once what it submitted so far is done."""
    sim, out = _sim(tmp_path, home, ["-n", "2", sys.executable, str(tmp_path / "sim.py"),
                                     str(tmp_path / "out")])
    _mid(out, sim)
    run = next(home.glob("runs/*"))
    so_far = 2 * (STEPS // 2 + 1) * PER_STEP
    wait_for(lambda: _states(run) == {"done": so_far}, 60, "the first half done")
    return sim, out, run


def _states(run: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(run / "odop.db")) as db:
        return dict(db.execute("SELECT state, COUNT(*) FROM executions GROUP BY state"))


def test_an_agent_killed_mid_run_loses_and_repeats_nothing(tmp_path: Path,
                                                           odop_home: Path) -> None:
    sim, out, run = _one_node(tmp_path, odop_home)
    try:
        agent = odop_process(odop_home, "agent")
        assert agent is not None
        assert transport.announced(run, transport.relay_file(agent.cmdline()[
            agent.cmdline().index("--node") + 1]))
        agent.kill()
        (out / "go").touch()
        stdout, stderr = sim.communicate(timeout=200)
    finally:
        with contextlib.suppress(ProcessLookupError):
            sim.kill()
    assert sim.returncode == 0, stderr + log_tails(run)
    assert _agent_starts(run) >= 2, stderr  # the keeper started it again
    _done_once(out, run, json.loads(stdout.splitlines()[-1]))


def test_an_agent_stopped_for_7_s_loses_and_repeats_nothing(tmp_path: Path,
                                                             odop_home: Path) -> None:
    sim, out, run = _one_node(tmp_path, odop_home)
    agent = odop_process(odop_home, "agent")
    assert agent is not None
    agent.send_signal(signal.SIGSTOP)
    try:
        (out / "go").touch()  # the ranks submit on, to an agent that does not answer
        time.sleep(7)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(agent.pid, signal.SIGCONT)
    try:
        stdout, stderr = sim.communicate(timeout=200)
    finally:
        with contextlib.suppress(ProcessLookupError):
            sim.kill()
    assert sim.returncode == 0, stderr + log_tails(run)
    assert "sending to the scheduler directly" in stderr, stderr
    _done_once(out, run, json.loads(stdout.splitlines()[-1]))


def _agent_starts(run: Path) -> int:
    rows = sqlite3.connect(run / "odop.db").execute(
        "SELECT COUNT(DISTINCT pid) FROM components WHERE role = 'agent'").fetchone()
    return int(rows[0])
