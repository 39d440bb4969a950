"""PNG figures of a run (matplotlib, Agg backend, imported only when a figure is drawn).

Every x axis is seconds since the run started; every figure has a title and units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from odop.report.data import ReportError, RunData
from odop.report.energy import NodeEnergy
from odop.report.metrics import QueueSeries

DPI = 110


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ReportError("figures need matplotlib: pip install 'odop[report]'") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    _plt().close(fig)
    return path


def task_colours(tasks: list[str]) -> dict[str, Any]:
    """One stable colour per task name."""
    cmap = _plt().get_cmap("tab10")
    return {t: cmap(i % 10) for i, t in enumerate(sorted(set(tasks)))}


def _sim_end_line(ax: Any, data: RunData, t0: float) -> None:
    if data.sim_end is not None:
        ax.axvline(data.sim_end - t0, color="crimson", ls="--", lw=1.4, label="simulation end")


def running_spans(data: RunData) -> dict[str, list[tuple[float, float]]]:
    """Per execution, the intervals it was running (unix s), from its state events."""
    spans: dict[str, list[tuple[float, float]]] = {}
    since: dict[str, float] = {}
    for execution, t, state, _ in data.events:
        if state == "running":
            since.setdefault(execution, t)
        elif execution in since:
            spans.setdefault(execution, []).append((since.pop(execution), t))
    for execution, t in since.items():  # still running: up to the last event
        spans.setdefault(execution, []).append((t, max(t, data.events[-1][1])))
    return spans


def core_rows(data: RunData) -> dict[tuple[str, int], int]:
    """Row of each (node, core) in the heatmap, nodes in name order."""
    rows: dict[tuple[str, int], int] = {}
    for node, n in sorted(data.cores_per_node().items()):
        s = data.nodes.get(node)
        for c in (s.core_ids if s is not None and s.core_ids else range(n)):
            rows[(node, int(c))] = len(rows)
    return rows


def _util_cmap() -> Any:
    """White (idle) to mid grey (busy): dark enough to read, light enough for boxes."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("odop_util", ["#ffffff", "#8c8c8c"])


def core_heatmap(data: RunData, path: Path) -> Path:
    """(a) Utilisation per core over time, each execution a labelled box on its cores."""
    plt = _plt()
    t0 = data.started or 0.0
    rows = core_rows(data)
    fig, ax = plt.subplots(figsize=(11, max(3.0, 0.55 * len(rows) + 1.8)))
    mesh = None
    for node, s in sorted(data.nodes.items()):
        if not s.t.size or not s.core_ids:
            continue
        y = np.array([rows[(node, c)] for c in s.core_ids] + [rows[(node, s.core_ids[-1])] + 1])
        mesh = ax.pcolormesh(s.edges() - t0, y - 0.5, s.util.T, cmap=_util_cmap(), vmin=0, vmax=1,
                             shading="flat")
    if mesh is not None:
        fig.colorbar(mesh, ax=ax, pad=0.01, label="core utilisation (0..1)")
    handles = _execution_boxes(ax, data, rows, t0)
    _sim_end_line(ax, data, t0)
    sim = {(n, c) for n, s in data.nodes.items() for c in s.sim_cores}
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{n}:{c}" + (" (sim)" if (n, c) in sim else "") for n, c in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("node:core")
    ax.set_title(f"Run {data.name}: core utilisation and task executions")
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=max(1, min(6, len(handles))), fontsize=8, frameon=False)
    return _save(fig, path)


def _label_frac(task: str) -> float:
    """Fraction of the heatmap's width a box needs to hold its label (7-point text)."""
    return (max(len(task), 6) * 4.6 + 10) / (0.78 * 11 * DPI)


def _execution_boxes(ax: Any, data: RunData, rows: dict[tuple[str, int], int], t0: float
                     ) -> list[Any]:
    """Draw each running span as a box per held core; returns the legend handles."""
    from matplotlib.patches import Patch, Rectangle

    colours = task_colours([e["task"] for e in data.executions])
    spans = running_spans(data)
    xmax = max([b for v in spans.values() for _, b in v] + [t0 + 1]) - t0
    for e in data.executions:
        for a, b in spans.get(e["id"], []):
            for i, c in enumerate(e["cores"]):
                row = rows.get((e["node"] or "", int(c)))
                if row is None:
                    continue
                ax.add_patch(Rectangle((a - t0, row - 0.38), b - a, 0.76, lw=1.0,
                                       fc=(*colours[e["task"]][:3], 0.35),
                                       ec=colours[e["task"]],
                                       hatch="xx" if e["state"] == "failed" else None))
                if i == 0 and (b - a) / xmax > _label_frac(e["task"]):
                    ax.text((a + b) / 2 - t0, row, f"{e['task']}\n{e['id'][:6]}", ha="center",
                            va="center", fontsize=7, clip_on=True,
                            bbox={"fc": "white", "alpha": 0.7, "lw": 0, "pad": 1})
    ax.set_xlim(min([0.0, *(s.edges()[0] - t0 for s in data.nodes.values() if s.t.size)]),
                max([xmax, *(s.t[-1] - t0 for s in data.nodes.values() if s.t.size)]))
    handles = [Patch(fc=(*c[:3], 0.35), ec=c, label=f"task {t}") for t, c in colours.items()]
    if any(e["state"] == "failed" for e in data.executions):
        handles.append(Patch(fc="white", ec="grey", hatch="xx", label="failed"))
    return handles


def settled(q: QueueSeries, within_s: float = 0.05) -> QueueSeries:
    """Drop values that last under ``within_s`` (a task ending and the next being placed)."""
    if q.t.size < 2:
        return q
    keep = np.append(np.diff(q.t) > within_s, True)
    return QueueSeries(q.t[keep], q.queued[keep], q.running[keep], q.paused[keep])


def queue_figure(data: RunData, q: QueueSeries, path: Path) -> Path:
    """(b) Queued and running executions over time."""
    plt = _plt()
    t0 = data.started or 0.0
    fig, ax = plt.subplots(figsize=(11, 3.6))
    q = settled(q)
    if q.t.size:
        x = np.concatenate([[min(0.0, q.t[0] - t0)], q.t - t0])
        for values, label in ((q.queued, "queued"), (q.running, "running (holding cores)"),
                              (q.paused, "paused")):
            if label == "paused" and not values.any():
                continue
            ax.step(x, np.concatenate([[0], values]), where="post", label=label, lw=1.6)
    _sim_end_line(ax, data, t0)
    ax.set_xlabel("time since run start (s)")
    ax.set_ylabel("executions")
    ax.set_title(f"Run {data.name}: queue length over time")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return _save(fig, path)


def energy_figure(data: RunData, nodes: dict[str, NodeEnergy], signal_source: str,
                  path: Path) -> Path:
    """(c) Node power (W, with its source), grid intensity and cumulative gCO2."""
    plt = _plt()
    t0 = data.started or 0.0
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    right = bottom.twinx()
    for node, ne in sorted(nodes.items()):
        top.plot(ne.t - t0, ne.watts, marker=".", label=f"{node} (source: {ne.power_source})")
        bottom.step(ne.t - t0, ne.carbon, where="post", color="tab:green",
                    label=f"grid intensity ({signal_source})" if node == min(nodes) else None)
        right.plot(ne.t - t0, ne.cum_gco2, color="tab:purple", label=f"cumulative gCO2 {node}")
    for ax in (top, bottom):
        _sim_end_line(ax, data, t0)
        ax.grid(alpha=0.3)
    top.set_ylabel("node power (W)")
    top.set_ylim(bottom=0)
    top.set_title(f"Run {data.name}: power and carbon")
    top.legend(loc="lower left", fontsize=8)
    bottom.set_ylabel("carbon intensity (gCO2/kWh)")
    bottom.set_ylim(bottom=0)
    right.set_ylabel("cumulative emissions (gCO2)")
    right.set_ylim(bottom=0)
    bottom.set_xlabel("time since run start (s)")
    lines = bottom.get_legend_handles_labels(), right.get_legend_handles_labels()
    bottom.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="lower right",
                  fontsize=8)
    return _save(fig, path)


STAT_PANELS = (("count", "executions", "count", 1.0),
               ("wall_mean_s", "mean wall time", "s", 1.0),
               ("cpu_mean_s", "mean CPU time", "s", 1.0),
               ("rss_max_bytes", "peak memory (RSS)", "MiB", 1 / 2**20),
               ("joules", "energy (all executions)", "J", 1.0),
               ("wait_mean_s", "mean waiting time", "s", 1.0))


def task_stats_figure(data: RunData, stats: list[dict[str, Any]], path: Path) -> Path:
    """(d) Per-task bars: count, wall, CPU, RSS, energy, waiting time."""
    plt = _plt()
    colours = task_colours([s["task"] for s in stats])
    fig, axes = plt.subplots(2, 3, figsize=(11, 6))
    names = [s["task"] for s in stats]
    for ax, (key, title, unit, scale) in zip(axes.flat, STAT_PANELS, strict=True):
        values = [(s[key] or 0) * scale for s in stats]
        bars = ax.bar(names, values, color=[colours[n] for n in names])
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.margins(y=0.18)
        ax.tick_params(axis="x", labelrotation=20 if len(names) > 3 else 0)
    fig.suptitle(f"Run {data.name}: per-task statistics")
    fig.tight_layout()
    return _save(fig, path)


def phases_figure(data: RunData, path: Path) -> Path | None:
    """(e) Simulation phases per rank over time; None when the run recorded none."""
    if not data.phases:
        return None
    plt = _plt()
    t0 = data.started or 0.0
    ranks = sorted({(p.node, p.rank) for p in data.phases})
    colours = task_colours([p.name for p in data.phases])
    fig, ax = plt.subplots(figsize=(11, max(2.5, 0.45 * len(ranks) + 1.5)))
    for p in data.phases:
        y = ranks.index((p.node, p.rank))
        ax.broken_barh([(p.start - t0, p.end - p.start)], (y - 0.4, 0.8),
                       color=colours[p.name])
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=c, label=n) for n, c in colours.items()], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), title="phase", fontsize=8)
    _sim_end_line(ax, data, t0)
    ax.set_yticks(range(len(ranks)))
    ax.set_yticklabels([f"{n} rank {r}" for n, r in ranks])
    ax.set_ylabel("node, MPI rank")
    ax.set_xlabel("time since run start (s)")
    ax.set_title(f"Run {data.name}: simulation phases")
    return _save(fig, path)
