"""The report's figures share one time axis, label every execution they can, and the page
stands without matplotlib; its tables format every number (issue 18: items 8, 10)."""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path
from typing import Any

import pytest

from odop.cli.main import main
from odop.report import analyse, build_report, load_run
from odop.report import figures as figs
from odop.report.metrics import MAKESPAN, run_makespan
from odop.store.executions import RunStore
from odop.store.states import ExecState as S
from tests.test_report_support import SIM_END, T0, make_run

pytest.importorskip("matplotlib")


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Every figure drawn from now on, by file name, kept open for inspection."""
    kept: dict[str, Any] = {}

    def keep(fig: Any, path: Path) -> Path:
        fig.canvas.draw()
        kept[path.name] = fig
        path.write_bytes(b"")
        return path

    monkeypatch.setattr(figs, "_save", keep)
    return kept


def with_phases_and_predictions(run: Path) -> None:
    """Phases from 3 to 9 s, and predictions, one with nothing measured."""
    store = RunStore(run / "odop.db")
    for k in range(3, 9):
        store.add_phase(T0 + k, "n0", 0, "io", True)
        store.add_phase(T0 + k + 0.5, "n0", 0, "io", False)
    store.add_prediction(T0 + 5.0, "n0", 40, 0.8333333333333334, 1.2345678)
    store.add_prediction(T0 + 1796352155.268639 - T0, "n0", 0, None, None)
    store.close()


# -- 8: one time axis ---------------------------------------------------------------------
def test_every_figure_over_time_shares_one_axis(tmp_path: Path, drawn: dict[str, Any]) -> None:
    run = make_run(tmp_path)
    store = RunStore(run / "odop.db")
    for k in range(3, 9):  # phases that begin 3 s after the run
        store.add_phase(T0 + k, "n0", 0, "io", True)
        store.add_phase(T0 + k + 0.5, "n0", 0, "io", False)
    store.close()
    _, report = build_report(run, tmp_path / "out")
    assert set(drawn) == {"cores.png", "queue.png", "energy.png", "phases.png"}
    axis = figs.time_axis(report.data)
    assert axis[0] == 0.0 and axis[1] == pytest.approx(15.0)  # run start to the last sample
    for name, fig in drawn.items():
        plots = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        for ax in plots:
            assert ax.get_xlim() == pytest.approx(axis), (name, ax.get_xlim())
        assert any(ax.get_xlabel() == "time since run start (s)" for ax in plots), name


def test_the_time_axis_starts_at_the_run_start_even_when_samples_begin_later(
        tmp_path: Path) -> None:
    data = load_run(make_run(tmp_path))
    assert data.nodes["n0"].edges()[0] - T0 == pytest.approx(0.0)
    data.nodes["n0"].t = data.nodes["n0"].t[3:]
    data.nodes["n0"].dt = data.nodes["n0"].dt[3:]
    lo, hi = figs.time_axis(data)
    assert lo == 0.0 and hi == pytest.approx(15.0)


# -- 8: back-to-back executions keep their labels -----------------------------------------
def back_to_back_run(home: Path, n: int = 20, each_s: float = 1.0) -> Path:
    """A 40 s run whose core 1 runs ``n`` executions of ``each_s`` seconds back to back."""
    run = make_run(home, samples=False)
    store = RunStore(run / "odop.db")
    store.set_meta("sim_end", T0 + 40)
    for i in range(n):
        ex = f"{i:02d}" + "ab" * 15
        start = T0 + 10 + i * each_s
        store.add(ex, "reduce", {}, now=start)
        store.transition(ex, S.PLACED, now=start, node="n0", cores=[1])
        store.transition(ex, S.RUNNING, now=start, started_at=start)
        store.transition(ex, S.DONE, now=start + each_s, ended_at=start + each_s,
                         exit_code=0, wall_s=each_s, cpu_s=each_s)
    store.close()
    return run


def test_back_to_back_executions_keep_their_labels(tmp_path: Path,
                                                   drawn: dict[str, Any]) -> None:
    run = back_to_back_run(tmp_path)
    build_report(run, tmp_path / "out")
    texts = [t.get_text() for t in drawn["cores.png"].axes[0].texts]
    for i in range(20):
        assert any(f"{i:02d}abab" in t for t in texts), (i, texts)


def test_a_label_is_written_inside_its_box(tmp_path: Path, drawn: dict[str, Any]) -> None:
    build_report(back_to_back_run(tmp_path), tmp_path / "out")
    fig = drawn["cores.png"]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    boxes = [p.get_window_extent(renderer) for p in ax.patches]
    for text in ax.texts:
        extent = text.get_window_extent(renderer)
        assert any(b.x0 <= extent.x0 and extent.x1 <= b.x1 and b.y0 <= extent.y0
                   and extent.y1 <= b.y1 for b in boxes), text.get_text()


def test_very_short_executions_widen_the_heatmap_up_to_a_bound(tmp_path: Path) -> None:
    assert figs.heatmap_width(load_run(back_to_back_run(tmp_path / "a"))) == figs.WIDTH_IN
    narrow = figs.heatmap_width(load_run(back_to_back_run(tmp_path / "b", each_s=0.4)))
    assert figs.WIDTH_IN < narrow <= figs.MAX_WIDTH_IN
    tiny = figs.heatmap_width(load_run(back_to_back_run(tmp_path / "c", each_s=0.01)))
    assert tiny == figs.MAX_WIDTH_IN


# -- 8: per-task numbers are a table, not tasks.png ----------------------------------------
def test_no_tasks_png_the_page_has_the_per_task_table(tmp_path: Path) -> None:
    page, report = build_report(make_run(tmp_path), tmp_path / "out")
    assert "tasks" not in report.figures and not (tmp_path / "out" / "tasks.png").exists()
    text = page.read_text()
    table = text[text.index("<h2>Per task</h2>"):text.index("<h2>Per execution</h2>")]
    for column in ("count", "wall mean (s)", "CPU mean (s)", "peak RSS (MiB)",
                   "wait mean (s)", "energy (J)"):
        assert f"<th>{column}</th>" in table


# -- 8: the prediction table ---------------------------------------------------------------
def test_prediction_accuracy_table_formats_numbers_and_dashes_none(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    with_phases_and_predictions(run)
    page, _ = build_report(run, tmp_path / "out")
    text = page.read_text()
    table = text[text.index("<h2>Idle prediction</h2>"):text.index("<h2>Notes</h2>")]
    assert "None" not in table and "0.8333333333333334" not in table
    assert "1796352155" not in table and "1.2345678" not in table
    assert "<td class=n>5.0</td>" in table  # seconds since the run started
    assert "<td class=n>83.3 %</td>" in table and "<td class=n>1.23</td>" in table
    assert table.count("<td class=n>-</td>") == 2  # no accuracy, no period
    assert text.count("<h2>Idle prediction</h2>") == 1


# -- 8: one makespan -----------------------------------------------------------------------
def test_one_makespan_stated_on_the_page(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    page, report = build_report(run, tmp_path / "out")
    assert report.headline["makespan_s"] == run_makespan(run) == pytest.approx(14.0)
    assert report.headline["makespan_s"] == pytest.approx(report.headline["last_task_end"] - T0)
    text = page.read_text()
    assert escape(MAKESPAN) in text and "odop demo</code> reports the same number" in text


def test_makespan_is_the_simulation_end_when_tasks_end_before_it(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    store = RunStore(run / "odop.db")
    store.set_meta("sim_end", T0 + 20)
    store.close()
    assert run_makespan(run) == pytest.approx(20.0) != SIM_END - T0


# -- 10: without matplotlib ----------------------------------------------------------------
@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError


def test_without_matplotlib_the_page_has_its_tables(tmp_path: Path, no_matplotlib: None) -> None:
    run = make_run(tmp_path)
    with_phases_and_predictions(run)
    page, report = build_report(run, tmp_path / "out")
    assert report.figures == {}
    assert report.missing_figures == ["cores.png", "queue.png", "energy.png", "phases.png"]
    text = page.read_text()
    for part in ("<h2>Headline</h2>", "<h2>Per task</h2>", "<h2>Per execution</h2>",
                 "83.3 %", escape("pip install 'odop[report]'"), "cores.png, queue.png"):
        assert part in text, part
    assert "data:image/png" not in text


def test_odop_report_without_matplotlib_writes_the_page_and_says_what_is_missing(
        tmp_path: Path, no_matplotlib: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ODOP_HOME", str(tmp_path))
    make_run(tmp_path)
    assert main(["report", "synthetic", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr()
    assert (tmp_path / "o" / "report.html").exists()
    assert out.out.strip() == str(tmp_path / "o" / "report.html")
    assert ("figures not drawn, they need matplotlib (pip install 'odop[report]'): "
            "cores.png, queue.png, energy.png") in out.err
    assert main(["report", "synthetic", "--out", str(tmp_path / "o"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["figures"] == [] and "cores.png" in summary["missing_figures"]


def test_the_numbers_need_no_matplotlib(tmp_path: Path, no_matplotlib: None) -> None:
    assert analyse(load_run(make_run(tmp_path))).headline["tasks_done"] == 2
