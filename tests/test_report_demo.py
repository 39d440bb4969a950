"""Report and live view of a real run: ``odop demo`` once per session, then read it back."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import child_env, mpiexec

pytestmark = [pytest.mark.slow, pytest.mark.mpi,
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's JSON summary, plus ``home``: a small real run in a private ODOP_HOME."""
    home = tmp_path_factory.mktemp("odop-home")
    done = subprocess.run(
        [sys.executable, "-m", "odop", "demo", "--json", "--steps", "160", "--every", "40",
         "--size", "256"], capture_output=True, text=True, timeout=180,
        env=child_env(ODOP_HOME=str(home)))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    summary["home"] = home
    return summary


def test_report_of_a_real_run(demo: dict[str, Any], tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    from odop.report import build_report

    page, report = build_report(demo["run_dir"], tmp_path / "report")
    assert page.exists() and page.stat().st_size > 10_000
    pngs = list(report.figures.values())
    assert len(pngs) >= 3
    for png in pngs:
        assert png.read_bytes()[:8] == PNG
        assert mpimg.imread(png).shape[0] > 200
    assert page.read_text().count("data:image/png;base64,") == len(pngs)


def test_headline_matches_the_demo(demo: dict[str, Any]) -> None:
    from odop.report import analyse, load_run

    h = analyse(load_run(demo["run_dir"])).headline
    assert h["tasks_done"] == demo["tasks_done"]
    assert h["executions"] == demo["tasks_submitted"]
    assert h["tasks_failed"] == demo["tasks_failed"] == 0
    assert h["ended"] is True and h["nodes"] == 1
    assert 0 < h["sim_wall_s"] <= h["makespan_s"]
    assert demo["makespan_s"] == pytest.approx(h["makespan_s"])  # one definition for both
    assert 0 <= h["harvested_cpu_s"] <= h["tasks_cpu_s"] + 1e-9
    assert h["after_serial_s"] == pytest.approx(h["sim_wall_s"] + h["tasks_wall_s"])
    assert h["tasks_joules"] > 0 and h["tasks_gco2"] > 0 and h["power_source"] != "none"
    assert h["wait_max_s"] >= h["wait_median_s"] >= 0


def test_cli_report_json(demo: dict[str, Any], capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from odop.cli import report as cli

    monkeypatch.setenv("ODOP_HOME", str(demo["home"]))
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", demo["run"], "--json"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["html"] == str(Path(demo["run_dir"]).resolve() / "report" / "report.html")
    assert len(out["figures"]) >= 3 and out["headline"]["tasks_done"] == demo["tasks_done"]


def test_watch_once_on_a_real_run(demo: dict[str, Any]) -> None:
    from odop.cli.watch import watch

    out = io.StringIO()
    assert watch(demo["run_dir"], once=True, stream=out) == 0
    text = out.getvalue()
    for part in (f"run {demo['run']}", "[ended]", f"done {demo['tasks_done']}",
                 "running: none", "nodes:", "power now:", "carbon now:"):
        assert part in text, part
