"""``odop export`` on a small fabricated run: which executions, which site, which window."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from odop.cli.export import task_command
from odop.cli.main import main
from odop.launch.account import take
from odop.paths import RunPaths
from odop.store.executions import RunStore
from odop.store.profiles import Measurement, ProfileStore
from odop.store.states import ExecState
from tests.conftest import child_env

H = 3600.0
T0 = 1_700_000_000.0 - 1_700_000_000.0 % H
CURVE = [400, 380, 360, 350, 340, 100, 100, 420, 450, 480, 500, 460] + [400] * 12
MODULE = '''
import json, pathlib
def reduce(path, out, factor=1):
    pathlib.Path(out).write_text(json.dumps({"path": path, "factor": factor}))
'''


def specs(tmp: Path) -> dict[str, dict]:
    py = {"kind": "python", "target": f"{tmp / 'mytasks.py'}:reduce", "cpus_min": 2.0,
          "cpus_max": 2.0, "time_s": 1800.0}
    return {"reduce": {"name": "reduce", **py},
            "tiny": {"name": "tiny", **py, "time_s": 10.0},
            "compress": {"name": "compress", "kind": "executable", "target": "gzip",
                         "argv": ["-k", "{path}"], "time_s": 60.0}}


@pytest.fixture
def run_db(odop_home: Path, tmp_path: Path) -> Path:
    (tmp_path / "mytasks.py").write_text(MODULE)
    root = odop_home / "runs" / "r1"
    root.mkdir(parents=True)
    store = RunStore(root / "odop.db")
    store.put_tasks(specs(tmp_path))
    deadline = T0 + 10 * H
    store.add("e-reduce-1", "reduce", {"path": "/data/s1.h5", "out": "/data/s1.out"},
              deadline=deadline, now=T0)
    store.add("e-compress-1", "compress", {"path": "/data/s1.h5"}, deadline=deadline, now=T0)
    store.add("e-tiny-1", "tiny", {"path": "a", "out": "b"}, now=T0)
    store.add("e-reduce-0", "reduce", {"path": "/data/s0.h5", "out": "x"}, now=T0)
    for state in (ExecState.PLACED, ExecState.RUNNING, ExecState.DONE):
        store.transition("e-reduce-0", state)
    store.close()
    profiles = ProfileStore(odop_home / "profiles.db")  # compress really takes ~1000 s
    profiles.record("compress", "r0", "old", Measurement(1000.0, 900.0, 1 << 20, energy_j=5e4))
    profiles.close()
    return root


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    rows = "\n".join(f"{T0 + i * H:.0f},{v}" for i, v in enumerate(CURVE))
    (tmp_path / "south.csv").write_text("t,carbon\n" + rows + "\n")
    path = tmp_path / "sites.toml"
    path.write_text('[[site]]\nname = "north"\ndirectives = ["--clusters=north"]\n'
                    '[site.energy]\ncarbon = 500\n\n'
                    '[[site]]\nname = "south"\ndirectives = ["--clusters=south"]\n'
                    '[site.energy]\nprovider = "replay"\nfile = "south.csv"\n')
    return path


def export(capsys, *argv: str) -> tuple[int, str]:
    code = main(["export", "r1", "--now", str(T0), "--alloc-end", str(T0 + 600), *argv])
    return code, capsys.readouterr().out


def test_exports_what_cannot_finish_at_the_cleanest_window(run_db, sites, tmp_path, capsys):
    out_file = tmp_path / "job.sbatch"
    code, out = export(capsys, "--sites", str(sites), "--out", str(out_file), "--json",
                       "--utc")
    assert code == 0
    summary = json.loads(out)
    assert {x["execution"] for x in summary["exported"]} == {"e-reduce-1", "e-compress-1"}
    by_id = {x["execution"]: x for x in summary["exported"]}
    assert by_id["e-compress-1"]["duration_s"] == pytest.approx(1200.0)  # history x margin
    assert by_id["e-compress-1"]["estimate"] == "history"
    assert by_id["e-compress-1"]["energy_j"] == pytest.approx(5e4)
    assert by_id["e-reduce-1"]["estimate"] == "declared"
    assert summary["site"] == "south" and summary["fits"] is True
    assert summary["begin"] == T0 + 5 * H  # the dip, 3000 s of work before the deadline
    script = out_file.read_text()
    assert "#SBATCH --begin=2023-11-15T03:00:00" in script  # T0 + 5 h in UTC
    assert "#SBATCH --clusters=south" in script and "--clusters=north" not in script
    assert "gzip -k /data/s1.h5" in script
    assert "load_callable(sys.argv[1])" in script and "/data/s1.out" in script
    assert "s0.h5" not in script and "e-tiny" not in script
    account = take(RunPaths(run_db))  # exported is said apart from what was left queued
    assert (account.exported, account.queued, account.done) == (2, 1, 1)


def test_nothing_to_export_when_everything_fits(run_db, capsys):
    code = main(["export", "r1", "--now", str(T0), "--alloc-end", str(T0 + 10 * H)])
    assert code == 0
    assert "nothing to export" in capsys.readouterr().out
    assert not (run_db / "export.sbatch").exists()


def test_default_site_uses_the_config_energy_section(run_db, tmp_path, capsys):
    config = tmp_path / "odop.toml"
    config.write_text("[energy]\ncarbon = 123\n")
    code, out = export(capsys, "--config", str(config), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["site"] == "here" and summary["begin"] == T0  # flat: start at once
    assert summary["mean_signal"] == pytest.approx(123.0)
    assert Path(summary["script"]) == run_db / "export.sbatch"


def test_python_runner_calls_the_function_with_its_arguments(tmp_path):
    (tmp_path / "mytasks.py").write_text(MODULE)
    out = tmp_path / "result.json"
    cmd = task_command(specs(tmp_path)["reduce"], {"path": "/x y", "out": str(out),
                                                   "factor": 3}, python=sys.executable)
    subprocess.run(cmd, check=True, env=child_env(), timeout=30)
    assert json.loads(out.read_text()) == {"path": "/x y", "factor": 3}


def test_unfillable_argv_is_a_clear_error(run_db, capsys):
    store = RunStore(run_db / "odop.db")
    store.add("e-compress-2", "compress", {"file": "oops"}, now=T0)
    store.close()
    code = main(["export", "r1", "--now", str(T0), "--alloc-end", str(T0 + 600)])
    assert code == 2
    err = capsys.readouterr().err
    assert "'compress'" in err and "['path'" not in err and "file" in err
