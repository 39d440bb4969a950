"""Wrapped mode: ``odop run -- mpiexec -n 2 <program without odop>`` processes every file
the program writes through a spec-file trigger, and exits with the program's code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec

pytestmark = [pytest.mark.slow, pytest.mark.mpi,
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]

PROGRAM = '''
import os, sys, time
rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))
out = sys.argv[1]
for i in range(3):
    with open(os.path.join(out, f"r{rank}-{i}.dat"), "wb") as fh:
        fh.write(bytes(range(rank + i + 3)))
    time.sleep(0.2)
sys.exit(int(sys.argv[2]))
'''

TASKS = '''
def digest(path):
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path + ".sum", "w") as fh:
        fh.write(str(sum(data)))
'''


def _wrapped(tmp_path: Path, code: int) -> tuple[subprocess.CompletedProcess, Path]:
    data = tmp_path / "data"
    data.mkdir()
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "post.py").write_text(TASKS)
    (tasks / "post.json").write_text(json.dumps(
        {"name": "digest", "function": "post:digest", "trigger": {"file": f"{data}/*.dat"}}))
    (tmp_path / "prog.py").write_text(PROGRAM)
    argv = [sys.executable, "-m", "odop", "run", "--tasks", str(tasks), "--json", "--",
            str(mpiexec()), "-n", "2", sys.executable, str(tmp_path / "prog.py"), str(data),
            str(code)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env=child_env())
    return proc, data


def test_unchanged_program_files_processed(tmp_path: Path, odop_home: Path) -> None:
    proc, data = _wrapped(tmp_path, 0)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["drained"] and summary["done"] == 6 and summary["failed"] == 0
    assert summary["account"]["unaccounted"] == 0 and summary["status"] == 0
    assert summary["account"]["origins"] == {"file trigger": 6}
    assert f"run {summary['run']}: command exited 0; tasks: 6 submitted, 6 done" in proc.stderr
    for rank in (0, 1):
        for i in range(3):
            path = data / f"r{rank}-{i}.dat"
            assert (data / f"{path.name}.sum").read_text() == str(sum(range(rank + i + 3)))


def test_exit_code_is_the_programs(tmp_path: Path, odop_home: Path) -> None:
    proc, _ = _wrapped(tmp_path, 3)
    assert proc.returncode == 3, proc.stderr


def test_no_command_is_a_clear_error(odop_home: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "odop", "run", "--"], capture_output=True,
                          text=True, timeout=30, env=child_env())
    assert proc.returncode == 2
    assert proc.stderr.startswith("odop run: error: odop run needs a command"), proc.stderr


def test_a_bad_spec_stops_odop_run_before_any_run_exists(tmp_path: Path,
                                                         odop_home: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "bad.json").write_text(json.dumps({"name": "x", "program": "/bin/true",
                                                "time": "10 minutes"}))
    proc = subprocess.run([sys.executable, "-m", "odop", "run", "--tasks", str(tasks), "--",
                           sys.executable, "-c", "pass"], capture_output=True, text=True,
                          timeout=30, env=child_env())
    assert proc.returncode == 2 and proc.stderr.startswith("odop run: error:"), proc.stderr
    assert "time" in proc.stderr
    assert not (odop_home / "runs").exists() or not any((odop_home / "runs").iterdir())
