"""No odop process or task outlives the simulation, however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odop.config import Config
from odop.engine.engine import LOST_AFTER_S
from odop.launch.client import Client
from odop.paths import RunPaths
from odop.protocol import MsgType
from odop.store.executions import RunStore
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import (
    executions,
    log_tails,
    odop_pids,
    wait_for,
    wait_gone,
    write_sim,
)

pytestmark = pytest.mark.slow
GONE_S = Config().stop_grace_s + LOST_AFTER_S + 5.0
"""How long odop may take to go once the simulation has: an agent gives its tasks the stop
grace to end on SIGTERM, then waits for their reported exits (an idle-priority task dies
slowly on a loaded node), plus a margin."""


def _start(tmp_path: Path, **env: str) -> tuple[subprocess.Popen, Path]:
    sim = write_sim(tmp_path)
    (tmp_path / "out").mkdir()
    proc = subprocess.Popen([sys.executable, str(sim), str(tmp_path / "out"), "2", "plain"],
                            stdout=subprocess.PIPE, text=True, cwd=tmp_path,
                            env=child_env(TASK_SLEEP="60", **env))
    assert proc.stdout is not None
    run_dir = Path(json.loads(proc.stdout.readline())["run"])
    wait_for(lambda: any(e["state"] == "running" for e in executions(run_dir)), 30,
             "a task to run")
    return proc, run_dir


def test_sigkilled_simulation_takes_odop_and_tasks_with_it(tmp_path: Path,
                                                             odop_home: Path) -> None:
    proc, run_dir = _start(tmp_path)
    pids = odop_pids(run_dir)
    assert len(pids) >= 3
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert not (left := wait_gone(pids, GONE_S)), (left, log_tails(run_dir))
    states = {e["state"] for e in executions(run_dir)}
    assert states <= {"cancelled", "failed", "queued"}


def test_exit_without_stop_is_not_held_up(tmp_path: Path, odop_home: Path) -> None:
    t0 = time.monotonic()
    proc, run_dir = _start(tmp_path, NO_STOP="1", LINGER="4")
    pids = odop_pids(run_dir)
    assert proc.wait(10) == 0
    assert time.monotonic() - t0 < 30
    assert not (left := wait_gone(pids, GONE_S)), (left, log_tails(run_dir))


def test_scheduler_signalled_twice_aborts_once(tmp_path: Path, odop_home: Path) -> None:
    """A parent's death signal can come more than once; the abort runs once, to the end."""
    (tmp_path / "waits.py").write_text("def wait():\n    pass\n")
    paths = RunPaths(odop_home / "runs" / "twice").create()
    RunStore(paths.db).close()
    log = tmp_path / "scheduler.log"
    with log.open("wb") as out:
        sched = subprocess.Popen([sys.executable, "-m", "odop", "scheduler", "--run", "twice"],
                                 env=child_env(ODOP_HOME=str(odop_home)), stdout=out,
                                 stderr=subprocess.STDOUT)
    client = Client(paths.scheduler_endpoint)
    try:
        spec = parse_spec({"name": "wait", "function": f"{tmp_path}/waits.py:wait"},
                          source="test")
        client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
        for i in range(3):  # no agent: they stay queued
            client.submit(f"e{i}", "wait", {})
        assert client.flush(20)
        sched.send_signal(signal.SIGTERM)
        time.sleep(0.01)  # apart: two at once are one to Python
        sched.send_signal(signal.SIGTERM)
        assert sched.wait(20) == 0, log.read_text()
    finally:
        client.close()
        sched.kill()
    assert log.read_text().count("aborting") == 1, log.read_text()
    assert {e["state"] for e in executions(paths.root)} == {"cancelled"}
