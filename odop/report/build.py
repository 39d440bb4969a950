"""Assemble a run's report: numbers, figures (PNG files) and the HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from odop.energy.accounting import Comparison
from odop.energy.compare import after_simulation
from odop.report import energy, metrics
from odop.report.data import RunData, load_run
from odop.report.model import Report


def analyse(data: RunData) -> Report:
    """Every number of the report (no figures yet)."""
    signal = energy.run_signal(data)
    energies = energy.all_executions(data, signal)
    nodes = {n: energy.node_energy(s, signal) for n, s in data.nodes.items() if s.t.size}
    node_j = sum(n.joules for n in nodes.values()) if nodes else None
    head = metrics.headline(data, energies, node_j)
    t0 = data.started or 0.0
    head["carbon_g_per_kwh"] = signal.mean_over(t0, t0 + (head["makespan_s"] or 0.0))
    head["signal_source"] = signal.source
    report = Report(data, head, metrics.task_stats(data, energies), energies, nodes)
    report.after = _after(data, head, nodes, signal)
    if report.after is not None:
        head["after_alloc_joules"] = report.after.joules
        head["after_alloc_gco2"] = report.after.gco2
    return report


def _after(data: RunData, head: dict[str, Any], nodes: dict[str, energy.NodeEnergy],
           signal: Any) -> Comparison | None:
    """The same tasks on a new allocation after the simulation (odop.energy.compare)."""
    cores = data.cores_per_node()
    ran = [e for e in data.executions if metrics.wall_of(e) is not None]
    watts = [float(np.mean(n.watts)) for n in nodes.values() if n.watts.size]
    if not ran or not watts or not cores or data.sim_end is None:
        return None
    return after_simulation([metrics.wall_of(e) or 0.0 for e in ran],
                            [max(1, len(e["cores"])) for e in ran],
                            max(cores.values()), len(cores), max(watts), data.sim_end,
                            signal, head["tasks_gco2"])


FIGURES = {"cores": "cores.png", "queue": "queue.png", "energy": "energy.png",
           "phases": "phases.png"}
"""Each figure's key and file name, in the page's order."""


def planned(report: Report) -> list[str]:
    """The figures the run has data for, by key."""
    from odop.report import figures

    d = report.data
    has = {"cores": bool(figures.core_rows(d)), "queue": bool(d.events),
           "energy": bool(report.nodes), "phases": bool(d.phases)}
    return [k for k in FIGURES if has[k]]


def draw(report: Report, out: Path) -> dict[str, Path]:
    """Write the PNG figures into ``out``; returns them by key. Without matplotlib none is
    drawn and ``report.missing_figures`` names them."""
    from odop.report import figures

    d, wanted = report.data, planned(report)
    report.figures, report.missing_figures = {}, []
    if not figures.have_matplotlib():
        report.missing_figures = [FIGURES[k] for k in wanted]
        return report.figures
    out.mkdir(parents=True, exist_ok=True)
    draw_one = {
        "cores": lambda path: figures.core_heatmap(d, path),
        "queue": lambda path: figures.queue_figure(d, metrics.queue_series(d.events), path),
        "energy": lambda path: figures.energy_figure(d, report.nodes,
                                                     report.headline["signal_source"], path),
        "phases": lambda path: figures.phases_figure(d, path),
    }
    for key in wanted:
        made = draw_one[key](out / FIGURES[key])
        if made is not None:
            report.figures[key] = made
    return report.figures


def build_report(run_dir: Path | str, out: Path | str | None = None) -> tuple[Path, Report]:
    """Analyse ``run_dir``, draw its figures and write ``report.html`` into ``out``.

    ``out`` defaults to ``<run_dir>/report``. Returns the HTML path and the report.
    Without matplotlib the page is written with its tables and no figures
    (``report.missing_figures`` names them).
    """
    from odop.report.html import render

    data = load_run(run_dir)
    folder = Path(out) if out is not None else data.root / "report"
    report = analyse(data)
    draw(report, folder)
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / "report.html"
    page.write_text(render(report, folder), encoding="utf-8")
    return page, report
