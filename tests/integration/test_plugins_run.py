"""A new trigger kind and a new grid provider, each one file with one registration line
(tests/plugins/), named in $ODOP_PLUGINS and exercised end to end by a real odop run: the
spec loader, the scheduler daemon and the agent all find them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, child_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
PLUGINS = REPO / "tests" / "plugins"


def _run(tmp_path: Path, spec: dict, program: str, config: str = "") -> dict:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "t.json").write_text(json.dumps(spec))
    (tmp_path / "odop.toml").write_text(config)
    plugins = f"{PLUGINS / 'flag_trigger.py'},{PLUGINS / 'flat_grid.py'}"
    proc = subprocess.run([sys.executable, "-m", "odop", "run", "--tasks", str(tasks),
                           "--config", str(tmp_path / "odop.toml"), "--json", "--",
                           sys.executable, "-c", program], capture_output=True, text=True,
                          timeout=90, cwd=tmp_path, env=child_env(ODOP_PLUGINS=plugins))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_trigger_kind_from_a_plugin_runs_its_task(tmp_path: Path, odop_home: Path) -> None:
    spec = {"name": "seen", "program": "/bin/sh", "argv": ["-c", "cp {path} {path}.seen"],
            "trigger": {"flag": "ready.flag"}}
    summary = _run(tmp_path, spec, "import time, pathlib; time.sleep(0.5); "
                                   "pathlib.Path('ready.flag').write_text('go')")
    assert (tmp_path / "ready.flag.seen").read_text() == "go"
    assert summary["account"]["origins"] == {"flag trigger": 1}
    assert summary["account"]["done"] == 1


def test_a_grid_provider_from_a_plugin_prices_the_run(tmp_path: Path, odop_home: Path) -> None:
    spec = {"name": "burn", "program": sys.executable,
            "argv": ["-c", "sum(range(3_000_000))"], "trigger": {"flag": "go.flag"}}
    summary = _run(tmp_path, spec, "open('go.flag', 'w').close()",
                   '[energy]\nprovider = "flat_test"\n')
    db = sqlite3.connect(Path(summary["run_dir"]) / "odop.db")
    energy_j, gco2 = db.execute("SELECT energy_j, gco2 FROM executions").fetchone()
    db.close()
    assert energy_j > 0 and gco2 == pytest.approx(energy_j / 3.6e6 * 123.0)
