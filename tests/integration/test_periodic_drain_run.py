"""A periodic trigger stops when the simulation ends: ``odop run`` of a short program with
an ``every = "1s"`` task that lasts longer than its period drains and exits (it used to
fire on and on, and the drain never ended)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from odop.store.executions import RunStore
from tests.conftest import child_env
from tests.integration.helpers import executions

pytestmark = pytest.mark.slow

TASKS = '''
import time
def tick():
    time.sleep(3.0)
'''


def test_odop_run_ends_with_a_periodic_task(tmp_path: Path, odop_home: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "ticks.py").write_text(TASKS)
    (tasks / "tick.json").write_text(json.dumps(
        {"name": "tick", "function": "ticks:tick", "max_runs": 2, "trigger": {"every": "1s"}}))
    proc = subprocess.run([sys.executable, "-m", "odop", "run", "--run", "ticks", "--tasks",
                           str(tasks), "--", sys.executable, "-c", "import time; time.sleep(3)"],
                          capture_output=True, text=True, timeout=90, cwd=tmp_path,
                          env=child_env())
    assert proc.returncode == 0, proc.stderr
    run_dir = odop_home / "runs" / "ticks"
    store = RunStore(run_dir / "odop.db", readonly=True)
    sim_end = store.meta()["sim_end"]
    store.close()
    rows = executions(run_dir)
    assert len(rows) >= 2 and all(r["state"] == "done" for r in rows), rows
    assert all(r["submitted_at"] <= sim_end for r in rows)  # none fired after the end
