"""Spec-file triggers in a real run: files, lines and completions submit tasks by themselves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env
from tests.integration.helpers import executions

pytestmark = pytest.mark.slow

TASKS = '''
import json, os
def digest(path):
    data = open(path, "rb").read()
    with open(path + ".sum", "w") as fh:
        fh.write(str(sum(data)))
def tally(line, path, lineno):
    with open(os.path.join(os.path.dirname(path), f"line{lineno}.txt"), "w") as fh:
        fh.write(line)
def after_digest(path):
    open(path + ".after", "w").write("ok")
'''

SPECS = {"tasks": [
    {"name": "digest", "function": "posttasks:digest", "trigger": {"file": "data/*.dat"}},
    {"name": "tally", "function": "posttasks:tally", "trigger": {"line": "data/log.txt"}},
    {"name": "after_digest", "function": "posttasks:after_digest",
     "trigger": {"after": "digest"}},
]}

SIM = '''
import os, time, odop
odop.start(task_folder="tasks")
os.makedirs("data", exist_ok=True)
for i in range(3):
    with open(f"data/f{i}.dat", "wb") as fh:
        fh.write(bytes(range(i + 5)))
    with open("data/log.txt", "a") as fh:
        fh.write(f"step {i}\\n")
    time.sleep(0.3)
print(odop.stop())
'''


def test_file_line_and_after_triggers(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "posttasks.py").write_text(TASKS)
    (tmp_path / "tasks" / "post.json").write_text(json.dumps(SPECS))
    (tmp_path / "sim.py").write_text(SIM)
    proc = subprocess.run([sys.executable, "sim.py"], capture_output=True, text=True,
                          timeout=90, cwd=tmp_path, env=child_env())
    assert proc.returncode == 0, proc.stderr
    data = tmp_path / "data"
    for i in range(3):
        assert (data / f"f{i}.dat.sum").read_text() == str(sum(range(i + 5)))
        assert (data / f"f{i}.dat.after").read_text() == "ok"
        assert (data / f"line{i + 1}.txt").read_text().strip() == f"step {i}"
    run_dir = next((odop_home / "runs").iterdir())
    rows = executions(run_dir)
    assert sorted(r["task"] for r in rows) == sorted(["digest"] * 3 + ["after_digest"] * 3
                                                     + ["tally"] * 3)
    assert all(r["state"] == "done" for r in rows)
