"""One self-contained HTML page: inline CSS, figures as base64 data URIs, no scripts."""

from __future__ import annotations

import base64
import html
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odop.report import metrics
from odop.report.figures import MATPLOTLIB_HINT
from odop.report.model import Report

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1180px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{padding:3px 9px;border-bottom:1px solid #eee}
th{background:#f5f5f5;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.head td:first-child{font-weight:600}.note{color:#555}.small{font-size:.85em}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555}
code{background:#f5f5f5;padding:0 3px}
"""

CAPTIONS = {
    "cores": "Core utilisation (grey, from the observer's samples) with every execution "
             "drawn on the cores it held while running.",
    "queue": "Executions waiting (queued) and holding cores (placed or running) over time.",
    "energy": "Node power with its measurement source, grid carbon intensity and the "
              "node's cumulative emissions.",
    "phases": "Simulation phases per rank.",
}


def render(report: Report, out: Path) -> str:
    """The page's HTML; links are relative to ``out`` (where the page is written)."""
    d = report.data
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>odop run {_e(d.name)}</title><style>{CSS}</style></head><body>",
             f"<h1>odop run {_e(d.name)}</h1><p class='note'>Run folder <code>{_e(d.root)}"
             f"</code>; report generated {_e(time.strftime('%Y-%m-%d %H:%M:%S'))}; "
             f"run {'ended' if d.ended() else '<b>still running</b>'}.</p>",
             _headline(report), _figures(report), _phases_note(report),
             "<h2>Per task</h2>", _task_table(report), "<h2>Per execution</h2>",
             _execution_table(report, out), _energy_decisions(report), "<h2>Idle prediction</h2>",
             _predictions(report), _notes(report), "</body></html>"]
    return "\n".join(parts)


class Raw(str):
    """Markup written by this module: put in a table as it is, not escaped."""


def _e(x: Any) -> str:
    return str(x) if isinstance(x, Raw) else html.escape(str(x))


def _s(x: float | None, unit: str = "s", digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f} {unit}".rstrip()


def _g(x: float | None, unit: str = "") -> str:
    return "n/a" if x is None else f"{x:.3g} {unit}".rstrip()


def _headline_rows(h: dict[str, Any]) -> list[tuple[str, str, str]]:
    harvest_pct = 100 * h["harvested_cpu_s"] / h["tasks_cpu_s"] if h["tasks_cpu_s"] else None
    after = h["after_serial_s"], h["after_spread_s"]
    mk = h["makespan_s"]
    return [
        ("Executions", f"{h['executions']}: " + ", ".join(
            f"{v} {k}" for k, v in sorted(h["counts"].items())), "by final state"),
        ("Simulation wall time", _s(h["sim_wall_s"]), "run start to simulation end"),
        ("Makespan (time to solution)", _s(mk), metrics.MAKESPAN),
        ("Versus the simulation alone", f"{_s(h['vs_sim_s'])} "
         f"(x{_g(h['vs_sim_ratio'])})", "makespan minus simulation wall time"),
        ("Versus tasks afterwards, one core", f"{_s(after[0])} ({_saved(after[0], mk)})",
         "simulation + sum of task wall times run one after another"),
        ("Versus tasks afterwards, all cores", f"{_s(after[1])} ({_saved(after[1], mk)})",
         f"simulation + tasks' CPU seconds spread over all {h['cores']} cores (lower bound)"),
        ("Tasks' wall / CPU time", f"{_s(h['tasks_wall_s'])} / {_s(h['tasks_cpu_s'])}",
         "sums over executions"),
        ("Idle CPU harvested", f"{_s(h['harvested_cpu_s'])} ({_g(harvest_pct, '%')} of task CPU)",
         "task CPU seconds run while the simulation ran"),
        ("Waiting time mean / median / max", " / ".join(_s(h[k]) for k in (
            "wait_mean_s", "wait_median_s", "wait_max_s")), "submission to start"),
        ("Tasks' energy", f"{_g(h['tasks_joules'], 'J')}, {_g(h['tasks_gco2'], 'gCO2')}",
         f"power: {h['power_source']}; grid: {h['signal_source']} "
         f"({_g(h.get('carbon_g_per_kwh'), 'gCO2/kWh')})"),
        ("Nodes' energy over the run", _g(h["node_joules"], "J"), "all sampled power"),
        ("Tasks on a new allocation afterwards", f"{_g(h.get('after_alloc_joules'), 'J')}, "
         f"{_g(h.get('after_alloc_gco2'), 'gCO2')}",
         "whole nodes, tasks perfectly packed (odop.energy.compare.after_simulation)"),
    ]


def _saved(alternative: float | None, actual: float | None) -> str:
    """How much sooner (or later) odop's run finished than the alternative."""
    if alternative is None or actual is None:
        return "n/a"
    gap = alternative - actual
    return f"odop {_s(abs(gap))} {'sooner' if gap >= 0 else 'later'}"


def _headline(report: Report) -> str:
    rows = "".join(f"<tr><td>{_e(a)}</td><td class='n'>{_e(b)}</td><td class='note small'>"
                   f"{_e(c)}</td></tr>" for a, b, c in _headline_rows(report.headline))
    return f"<h2>Headline</h2><table class='head'>{rows}</table>"


def _figures(report: Report) -> str:
    out = ["<h2>Figures</h2>"]
    for key, path in report.figures.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        out.append(f"<figure><img alt='{_e(key)}' src='data:image/png;base64,{data}'>"
                   f"<figcaption>{_e(CAPTIONS.get(key, key))} File: "
                   f"<a href='{_e(Path(path).name)}'>{_e(Path(path).name)}</a></figcaption>"
                   f"</figure>")
    if report.missing_figures:
        out.append(f"<p class='note'>Figures not drawn: {_e(', '.join(report.missing_figures))}"
                   f" need matplotlib: <code>{_e(MATPLOTLIB_HINT)}</code>, then run "
                   "<code>odop report</code> again. The tables below are complete.</p>")
    elif not report.figures:
        out.append("<p class='note'>Nothing to draw: the run has no executions and no "
                   "samples yet.</p>")
    if report.figures and not report.data.nodes:
        out.append("<p class='note'>No observer samples were recorded: no utilisation or "
                   "power figure, and no energy per execution.</p>")
    return "\n".join(out)


def _phases_note(report: Report) -> str:
    if report.data.phases is None:
        return ("<p class='note'>Simulation phases: not recorded in this run "
                "(the simulation did not mark phases with <code>odop.phase</code>).</p>")
    if not report.data.phases:
        return "<p class='note'>Simulation phases: recorded, but none were marked.</p>"
    return ""


def _table(header: list[str], rows: list[list[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{_e(c)}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _task_table(report: Report) -> str:
    rows = [[s["task"], s["count"], s["done"], s["failed"], _s(s["wall_mean_s"], ""),
             _s(s["wall_total_s"], ""), _s(s["cpu_mean_s"], ""), _s(s["cpu_total_s"], ""),
             _mib(s["rss_max_bytes"]), _s(s["wait_mean_s"], ""), _g(s["joules"]),
             _g(s["gco2"])] for s in report.task_stats]
    header = ["task", "count", "done", "failed", "wall mean (s)", "wall total (s)",
              "CPU mean (s)", "CPU total (s)", "peak RSS (MiB)", "wait mean (s)",
              "energy (J)", "gCO2"]
    return _table(header, rows, set(range(1, 12))) if rows else "<p>No executions.</p>"


def _mib(b: int | None) -> str:
    return "n/a" if not b else f"{b / 2**20:.1f}"


def _execution_table(report: Report, out: Path) -> str:
    d, t0 = report.data, report.data.started or 0.0
    rows = []
    for e in d.executions:
        acc = report.energies.get(e["id"])
        logs = Path(os.path.relpath(d.root / "tasks" / e["id"], out))
        rows.append([e["id"][:10], e["task"], e["state"], f"{e['node'] or ''}:"
                     f"{','.join(map(str, e['cores']))}", _s(e["submitted_at"] - t0, ""),
                     _s(metrics.waiting_s(e), ""), _s(metrics.wall_of(e), ""),
                     _s(e["cpu_s"], ""), _mib(e["max_rss_bytes"]),
                     "" if e["exit_code"] is None else e["exit_code"],
                     _g(acc.joules) if acc else "n/a", _g(acc.gco2) if acc else "n/a",
                     acc.power_source if acc else "no samples",
                     Raw(f"<a href='{_e(logs / 'stdout')}'>out</a> "
                         f"<a href='{_e(logs / 'stderr')}'>err</a>")])
    header = ["id", "task", "state", "node:cores", "submitted (s)", "wait (s)", "wall (s)",
              "CPU (s)", "peak RSS (MiB)", "exit", "energy (J)", "gCO2", "power source", "logs"]
    return _table(header, rows, {4, 5, 6, 7, 8, 9, 10, 11}) if rows else "<p>No executions.</p>"


def _energy_decisions(report: Report) -> str:
    """The energy policy's deferral decisions with their reasons (events 'energy: ...')."""
    d, t0 = report.data, report.data.started or 0.0
    tasks = {e["id"]: e["task"] for e in d.executions}
    rows = [[e[:10], tasks.get(e, ""), _s(t - t0, ""), detail.removeprefix("energy: ")]
            for e, t, _, detail in d.events if detail.startswith("energy: ")]
    if not rows:
        return ""
    return "<h2>Energy decisions</h2>" + _table(["id", "task", "time (s)", "decision"],
                                                 rows, {2})


def _predictions(report: Report) -> str:
    rows = report.data.predictions
    if not rows:
        return "<p class='note'>Prediction accuracy: not recorded in this run.</p>"
    t0 = report.data.started or 0.0
    header = ["time (s)", "node", "samples", "accuracy", "phase period (s)"]
    body = [[_dash(r.get("t"), lambda t: f"{t - t0:,.1f}"), r.get("node") or "-",
             _dash(r.get("samples"), lambda n: f"{n:,.0f}"),
             _dash(r.get("accuracy"), lambda a: f"{100 * a:.1f} %"),
             _dash(r.get("period_s"), lambda p: f"{p:,.2f}")] for r in rows]
    return ("<p class='note'>Share of per-core idle/busy forecasts (one sample ahead) "
            "that came true, and the period of the simulation's phases when one was "
            "detected; times are seconds since the run started, '-' where nothing was "
            "measured.</p>" + _table(header, body, {0, 2, 3, 4}))


def _dash(x: Any, fmt: Callable[[float], str]) -> str:
    """``fmt`` of a number; '-' for None or anything that is not a number."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return "-"
    return fmt(float(x))


def _notes(report: Report) -> str:
    h = report.headline
    return ("<h2>Notes</h2><ul class='note'>"
            "<li>Times are seconds since the run started (meta <code>started</code>); "
            "every figure shares that time axis.</li>"
            f"<li>Makespan: {_e(metrics.MAKESPAN)}; <code>odop demo</code> reports the "
            "same number.</li>"
            f"<li>Energy per execution: the node's energy (trapezoid of sampled power, source "
            f"<b>{_e(h['power_source'])}</b>) times the execution's share of the CPU seconds "
            "used on the node while it ran; emissions use the grid intensity of source "
            f"<b>{_e(h['signal_source'])}</b>.</li>"
            "<li>'Versus tasks afterwards' are estimates, not measurements: one core runs the "
            "tasks' wall times back to back; all cores divides their CPU seconds by the "
            "cores (a lower bound).</li>"
            "<li>How every number is computed: docs/report.md in the odop sources.</li></ul>")
