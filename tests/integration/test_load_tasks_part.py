"""benchmarks/load.py --part tasks, as docs/benchmarks.md shows it: short tasks decorated
in a module that imports numpy and mpi4py all run once, pinned to the CPUs given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.mpi, pytest.mark.timeout(300),
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]


def test_the_tasks_part_alone_runs_every_task_once() -> None:
    cpus = ",".join(map(str, sorted(os.sched_getaffinity(0))[:2]))
    out = subprocess.run([sys.executable, "benchmarks/load.py", "--json", "--part", "tasks",
                          "--tasks", "60", "--cpus", cpus], cwd=REPO, env=child_env(),
                         capture_output=True, text=True, timeout=280, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert "burst" not in result and result["cpus"] == [int(c) for c in cpus.split(",")]
    tasks = result["tasks"]
    assert tasks["states"] == {"done": 60} and result["lost"] == result["duplicated"] == 0
    assert tasks["tasks_per_s"] > 0 and tasks["parsl_published_tasks_per_s"] == 1200


def test_a_bad_cpu_list_is_refused() -> None:
    out = subprocess.run([sys.executable, "benchmarks/load.py", "--cpus", "a,b"], cwd=REPO,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2 and "'a,b' is not a comma list of CPU numbers" in out.stderr
