"""A real mpiexec -n 2 job: tasks run pinned to the cores granted, never on a rank's core."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec
from tests.integration.helpers import components, executions, write_sim

pytestmark = [pytest.mark.mpi, pytest.mark.slow,
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]


def test_two_ranks_tasks_pinned_to_their_grant(tmp_path: Path, odop_home: Path) -> None:
    sim = write_sim(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(mpiexec()), "-n", "2", "-bind-to", "core", sys.executable, str(sim), str(out),
            "3", "mpi"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=child_env(),
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    run_dir = Path(lines[0]["run"])
    summary = next(x["summary"] for x in lines if "summary" in x)
    drained = {k: summary[k] for k in ("drained", "done", "failed")}
    assert drained == {"drained": True, "done": 6, "failed": 0}
    assert summary["account"]["unaccounted"] == 0 and summary["account"]["done"] == 6
    rows = {r["id"]: r for r in executions(run_dir)}
    assert len(rows) == 6 and all(r["state"] == "done" for r in rows.values())
    for info_file in out.glob("r*.json"):
        info = json.loads(info_file.read_text())
        row = rows[info["execution"]]
        assert info["affinity"] == row["cores"], "task ran outside its grant"
        assert info["allowed"] == ",".join(map(str, row["cores"]))
    assert len(list(out.glob("r*.json"))) == 6
    assert {c["role"] for c in components(run_dir)} == {"scheduler", "agent"}
    agents = [c for c in components(run_dir) if c["role"] == "agent"]
    assert len(agents) == 1, "exactly one agent per node"
