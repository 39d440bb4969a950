"""The issue's must-show: ``odop demo --json`` then ``odop status RUN --json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec

pytestmark = [pytest.mark.mpi, pytest.mark.slow,
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]


def odop(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "odop", *args], capture_output=True, text=True,
                          timeout=180, env=child_env(ODOP_HOME=str(home)))


def test_demo_then_status(odop_home: Path) -> None:
    demo = odop("demo", "--json", "--steps", "160", "--every", "40", "--size", "256",
                home=odop_home)
    assert demo.returncode == 0, demo.stderr
    summary = json.loads(demo.stdout.strip().splitlines()[-1])
    assert summary["tasks_failed"] == 0 and summary["tasks_done"] >= 4
    assert summary["outputs_verified"] is True
    assert {"run", "sim_wall_s", "makespan_s"} <= set(summary)
    status = odop("status", summary["run"], "--json", home=odop_home)
    assert status.returncode == 0, status.stderr
    snap = json.loads(status.stdout)
    assert {"run", "executions", "components"} <= set(snap)
    assert snap["executions"] and all(e["state"] == "done" and e["cores"]
                                      for e in snap["executions"])
    roles = [c["role"] for c in snap["components"]]
    assert "scheduler" in roles and "agent" in roles


def test_status_of_unknown_run_is_a_clear_error(odop_home: Path) -> None:
    result = odop("status", "no-such-run", home=odop_home)
    assert result.returncode == 2 and "run 'no-such-run' not found" in result.stderr
