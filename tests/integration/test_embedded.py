"""odop.start/submit/stop in a plain (non-MPI) script, with the task in its __main__ file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.integration.helpers import components, executions, wait_gone, write_sim

pytestmark = pytest.mark.slow


def test_single_process_runs_tasks_and_drains(tmp_path: Path, odop_home: Path) -> None:
    sim = write_sim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, str(sim), str(out), "4", "plain"], capture_output=True,
                          text=True, timeout=90, env=child_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    run_dir = Path(lines[0]["run"])
    drained = {k: lines[-1]["summary"][k] for k in ("drained", "done", "failed")}
    assert drained == {"drained": True, "done": 4, "failed": 0}
    account = lines[-1]["summary"]["account"]
    assert account["unaccounted"] == 0 and account["done"] == 4
    rows = executions(run_dir)
    assert [r["state"] for r in rows] == ["done"] * 4
    for row in rows:
        info = json.loads((out / f"r0-{lines[0]['ids'].index(row['id'])}.json").read_text())
        assert info["execution"] == row["id"]
        assert info["affinity"] == row["cores"] and row["cpu_s"] > 0 and row["max_rss_bytes"] > 0
    roles = {c["role"] for c in components(run_dir)}
    assert roles == {"scheduler", "agent"}
    assert all(c["ended_at"] for c in components(run_dir))
    assert not wait_gone([c["pid"] for c in components(run_dir)], 5.0)


def test_unknown_task_is_refused_at_submit(tmp_path: Path, odop_home: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text(
        "import odop\nodop.start()\ntry:\n    odop.submit('nope')\n"
        "except LookupError as e:\n    print('refused:', e)\nodop.stop()\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, env=child_env(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "refused: unknown task 'nope'" in proc.stdout


def test_submit_before_start_is_a_clear_error() -> None:
    import odop

    with pytest.raises(odop.OdopError, match=r"call odop.start\(\) first"):
        odop.submit("anything")
