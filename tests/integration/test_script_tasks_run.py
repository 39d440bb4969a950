"""Python-script tasks in a real run: ``odop run`` with ``program = "python"`` on a file
trigger runs each file's script as ``python post.py FILE`` would, and the imports its runs
teach are kept in the profile store, so later runs find them already imported."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PROGRAM = '''
import os, sys, time
out = sys.argv[1]
for i in range(5):
    with open(os.path.join(out, f"f{i}.dat"), "w") as fh:
        fh.write(str(i))
    time.sleep(0.5)
'''
POST = '''
import json, os, sys
WARM = "numpy" in sys.modules
import numpy
path = sys.argv[1]
json.dump({"name": __name__, "argv": sys.argv[1:], "warm": WARM,
           "value": int(numpy.int64(open(path).read()))}, open(path + ".json", "w"))
'''


def _run(tmp_path: Path, name: str) -> list[dict]:
    data = tmp_path / f"data-{name}"
    data.mkdir()
    argv = [sys.executable, "-m", "odop", "run", "--run", name, "--tasks",
            str(tmp_path / "tasks"), "--", sys.executable, str(tmp_path / "prog.py"), str(data)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=child_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads((data / f"f{i}.dat.json").read_text()) for i in range(5)]


def test_script_tasks_learn_their_imports_across_runs(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "post.py").write_text(POST)
    (tmp_path / "prog.py").write_text(PROGRAM)
    (tmp_path / "tasks" / "post.toml").write_text(
        f'program = {json.dumps(sys.executable)}\n'
        f'argv = [{json.dumps(str(tmp_path / "post.py"))}, "{{path}}"]\n'
        f'trigger = {{ file = "data-*/*.dat" }}\n')
    first = _run(tmp_path, "one")
    assert [r["value"] for r in first] == [0, 1, 2, 3, 4]
    assert all(r["name"] == "__main__" and r["argv"][0].endswith(".dat") for r in first)
    db = sqlite3.connect(odop_home / "profiles.db")
    imports, mode = db.execute("SELECT imports, mode FROM scripts WHERE task='post'").fetchone()
    assert "numpy" in json.loads(imports) and mode == "fork"
    second = _run(tmp_path, "two")
    assert [r["value"] for r in second] == [0, 1, 2, 3, 4]
    assert any(r["warm"] for r in second)  # its zygote imported numpy before the run
