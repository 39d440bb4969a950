"""Report numbers, energy, figures and the HTML page on a synthetic run with known values."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import pytest

from odop.energy.planner import J_PER_KWH
from odop.errors import OdopError
from odop.report import analyse, build_report, load_run
from odop.report.data import phases_from_marks
from odop.report.metrics import queue_series
from odop.store.executions import RunStore
from tests.test_report_support import SIM_END, T0, busy_at, make_run

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def test_load_run_arrays(run: Path) -> None:
    data = load_run(run)
    assert data.name == "synthetic" and data.started == T0 and data.sim_end == SIM_END
    assert [e["id"] for e in data.executions] == ["a", "c", "b", "d"]
    node = data.nodes["n0"]
    assert node.core_ids == [0, 1] and node.util.shape == (15, 2)
    assert node.sim_cores == [0] and node.power_source == "cpu:model"
    assert np.array_equal(node.util[:, 0], [1.0] * 10 + [0.0] * 5)
    assert data.phases is None and data.predictions is None
    assert data.ended()


def test_headline_numbers(run: Path) -> None:
    h = analyse(load_run(run)).headline
    assert h["counts"] == {"done": 2, "failed": 1, "cancelled": 1}
    assert h["tasks_done"] == 2 and h["tasks_failed"] == 1 and h["cores"] == 2
    assert h["sim_wall_s"] == pytest.approx(10.0)
    assert h["makespan_s"] == pytest.approx(14.0)
    assert h["vs_sim_s"] == pytest.approx(4.0)
    assert h["tasks_wall_s"] == pytest.approx(12.0) and h["tasks_cpu_s"] == pytest.approx(12.0)
    # a (2-6) and c (6-8) inside the simulation, b (8-14) for 2 of its 6 s
    assert h["harvested_cpu_s"] == pytest.approx(4 + 2 + 6 * 2 / 6)
    assert h["after_serial_s"] == pytest.approx(10 + 12)
    assert h["after_spread_s"] == pytest.approx(10 + 12 / 2)
    assert h["wait_mean_s"] == pytest.approx((1 + 4 + 5) / 3)
    assert h["wait_median_s"] == pytest.approx(4.0) and h["wait_max_s"] == pytest.approx(5.0)


def test_energy_per_execution(run: Path) -> None:
    report = analyse(load_run(run))
    e = report.energies
    assert set(e) == {"a", "b", "c"}  # 'd' never ran
    # trapezoid of sampled power (15 W at t=2, 20 W from t=3) x half the node's CPU
    assert e["a"].joules == pytest.approx((15 + 20) / 2 * 0.5 + 20 * 3 * 0.5)
    assert e["c"].joules == pytest.approx(20 * 2 * 0.5)
    assert e["b"].joules == pytest.approx(10 + 10 + 17.5 + 15 * 3)  # alone on the node after 10
    assert e["a"].gco2 == pytest.approx(e["a"].joules / J_PER_KWH * 480.0)
    assert {a.power_source for a in e.values()} == {"cpu:model"}
    assert report.headline["tasks_joules"] == pytest.approx(38.75 + 20 + 82.5)
    t = np.arange(1, 16) + T0
    w = np.array([10 + 5 * sum(busy_at(x)) for x in t])
    assert report.headline["node_joules"] == pytest.approx(np.trapezoid(w, t))
    assert report.after is not None and report.after.joules > 0


def test_task_stats(run: Path) -> None:
    stats = {s["task"]: s for s in analyse(load_run(run)).task_stats}
    assert stats["reduce"]["count"] == 2 and stats["reduce"]["failed"] == 1
    assert stats["reduce"]["wall_total_s"] == pytest.approx(6.0)
    assert stats["compress"]["count"] == 2 and stats["compress"]["done"] == 1
    assert stats["compress"]["wait_mean_s"] == pytest.approx(5.0)  # 'd' never started
    assert stats["reduce"]["rss_max_bytes"] == 2 * 2**20


def test_queue_series_replays_events() -> None:
    events = [("a", 1.0, "queued", ""), ("b", 2.0, "queued", ""), ("a", 3.0, "placed", ""),
              ("a", 3.1, "running", ""), ("a", 4.0, "paused", ""), ("b", 4.0, "placed", ""),
              ("a", 5.0, "running", ""), ("a", 6.0, "done", ""), ("b", 7.0, "failed", "")]
    q = queue_series(events)
    assert q.queued.tolist() == [1, 2, 1, 1, 1, 0, 0, 0, 0]
    assert q.running.tolist() == [0, 0, 1, 1, 0, 1, 2, 1, 0]
    assert q.paused.tolist() == [0, 0, 0, 0, 1, 1, 0, 0, 0]


def test_phases_pair_marks_and_close_open_ones() -> None:
    marks = [{"t": 1.0, "node": "n", "rank": 0, "phase": "io", "active": True},
             {"t": 2.0, "node": "n", "rank": 0, "phase": "io", "active": False},
             {"t": 3.0, "node": "n", "rank": 1, "phase": "compute", "active": True}]
    phases = phases_from_marks(marks, end=9.0)
    assert [(p.name, p.rank, p.start, p.end) for p in phases] == [
        ("io", 0, 1.0, 2.0), ("compute", 1, 3.0, 9.0)]


def _png_ok(path: Path) -> None:
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400


def test_report_files(run: Path, tmp_path: Path) -> None:
    page, report = build_report(run, tmp_path / "out")
    assert set(report.figures) == {"cores", "queue", "energy"}
    for path in report.figures.values():
        _png_ok(path)
    text = page.read_text()
    assert len(re.findall(r"src='data:image/png;base64,", text)) == 3
    assert "<script" not in text and "http" not in text
    assert "Simulation phases: not recorded" in text
    assert "Prediction accuracy: not recorded" in text
    assert text.index("Headline") < text.index("Per task") < text.index("Per execution")
    assert "cpu:model" in text and "gCO2" in text


def test_report_default_folder_and_escaping(tmp_path: Path) -> None:
    run = make_run(tmp_path, meta={"run": "<b>x</b>"})
    page, _ = build_report(run)
    assert page == run / "report" / "report.html"
    assert "<b>x</b>" not in page.read_text() and "&lt;b&gt;x&lt;/b&gt;" in page.read_text()


def test_phases_and_predictions_when_recorded(tmp_path: Path) -> None:
    marks = [{"t": T0 + k, "node": "n0", "rank": 0, "phase": "io" if k % 2 else "compute",
              "active": True} for k in range(1, 10)]
    marks = [m for k, m in enumerate(marks) for m in (m, {**marks[k], "active": False,
                                                          "t": m["t"] + 1})]
    run = make_run(tmp_path)
    store = RunStore(run / "odop.db")
    for m in marks:
        store.add_phase(m["t"], m["node"], m["rank"], m["phase"], m["active"])
    store.add_prediction(T0 + 20, "n0", 40, 0.875, 8.0)
    store.close()
    page, report = build_report(run, tmp_path / "out")
    assert "phases" in report.figures
    _png_ok(report.figures["phases"])
    text = page.read_text()
    assert "not recorded" not in text and "87.5 %" in text


def test_report_without_samples(tmp_path: Path) -> None:
    run = make_run(tmp_path, samples=False)
    page, report = build_report(run, tmp_path / "out")
    assert report.energies == {} and "energy" not in report.figures
    assert {"cores", "queue"} <= set(report.figures)
    assert "No observer samples were recorded" in page.read_text()


def _cli(*argv: str) -> int:
    from odop.cli import report as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", *argv])
    return int(args.func(args))


def test_cli_json(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(str(run), "--out", str(tmp_path / "o"), "--json") == 0
    out = json.loads(capsys.readouterr().out)
    assert Path(out["html"]).exists() and len(out["figures"]) == 3
    assert out["headline"]["tasks_done"] == 2


def test_cli_unknown_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ODOP_HOME", str(tmp_path))
    with pytest.raises(OdopError, match="run 'nope' not found"):
        _cli("nope")


def test_report_of_an_empty_run(tmp_path: Path) -> None:
    from odop.store.executions import RunStore

    run = tmp_path / "runs" / "empty"
    run.mkdir(parents=True)
    store = RunStore(run / "odop.db")
    store.set_meta("started", T0)
    store.close()
    page, report = build_report(run)
    assert report.figures == {} and report.headline["executions"] == 0
    assert report.headline["sim_wall_s"] is None and "Nothing to draw" in page.read_text()
