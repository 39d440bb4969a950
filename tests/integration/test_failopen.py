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

from tests.conftest import child_env
from tests.integration.helpers import executions, odop_pids, wait_for, wait_gone, write_sim

pytestmark = pytest.mark.slow


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
    assert wait_gone(pids, 8.0) == []
    states = {e["state"] for e in executions(run_dir)}
    assert states <= {"cancelled", "failed", "queued"}


def test_exit_without_stop_is_not_held_up(tmp_path: Path, odop_home: Path) -> None:
    t0 = time.monotonic()
    proc, run_dir = _start(tmp_path, NO_STOP="1", LINGER="4")
    pids = odop_pids(run_dir)
    assert proc.wait(10) == 0
    assert time.monotonic() - t0 < 30
    assert wait_gone(pids, 8.0) == []
