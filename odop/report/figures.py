"""PNG figures of a run (matplotlib, Agg backend, imported only when a figure is drawn).

Every figure over time shares one x axis: seconds since the run started (meta
``started``), over the span :func:`time_axis` gives, so that a moment is at the same
place in each. Every figure has a title and units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from odop.report.data import ReportError, RunData
from odop.report.energy import NodeEnergy
from odop.report.metrics import QueueSeries

DPI = 110


MATPLOTLIB_HINT = "pip install 'odop[report]'"
"""How to get the figures' plotting library."""


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (the figures need it; the numbers do not)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _plt() -> Any:
    try:
        import matplotlib
    except ImportError as exc:
        raise ReportError(f"figures need matplotlib: {MATPLOTLIB_HINT}") from exc
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


def origin(data: RunData) -> float:
    """Time zero of every figure (unix s): the run's start, else its first event."""
    return data.started or 0.0


def time_axis(data: RunData) -> tuple[float, float]:
    """The x range every figure over time shows (seconds since :func:`origin`): from the
    run's start (or an earlier sample or event) to the last event, sample, phase,
    execution end or the simulation's end, whichever is last."""
    t0 = origin(data)
    points = [t for _, t, _, _ in data.events]
    points += [t for s in data.nodes.values() if s.t.size for t in (s.edges()[0], s.t[-1])]
    points += [t for p in data.phases or [] for t in (p.start, p.end)]
    points += [t for e in data.executions for t in (e["started_at"], e["ended_at"]) if t]
    points += [data.sim_end] if data.sim_end is not None else []
    lo = min([0.0, *(t - t0 for t in points)])
    hi = max([lo + 1.0, *(t - t0 for t in points)])
    return lo, hi


def _time_x(ax: Any, data: RunData) -> None:
    """Put ``ax`` on the run's shared time axis."""
    ax.set_xlim(*time_axis(data))
    ax.set_xlabel("time since run start (s)")


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
    t0 = origin(data)
    rows = core_rows(data)
    fig, ax = plt.subplots(figsize=(heatmap_width(data), max(3.0, 0.55 * len(rows) + 1.8)))
    mesh = None
    for node, s in sorted(data.nodes.items()):
        if not s.t.size or not s.core_ids:
            continue
        y = np.array([rows[(node, c)] for c in s.core_ids] + [rows[(node, s.core_ids[-1])] + 1])
        mesh = ax.pcolormesh(s.edges() - t0, y - 0.5, s.util.T, cmap=_util_cmap(), vmin=0, vmax=1,
                             shading="flat")
    if mesh is not None:
        fig.colorbar(mesh, ax=ax, pad=0.01, label="core utilisation (0..1)")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    _time_x(ax, data)  # both limits before the boxes: their labels are fitted to them
    handles = _execution_boxes(ax, data, rows, t0)
    _sim_end_line(ax, data, t0)
    sim = {(n, c) for n, s in data.nodes.items() for c in s.sim_cores}
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{n}:{c}" + (" (sim)" if (n, c) in sim else "") for n, c in rows])
    ax.set_ylabel("node:core")
    ax.set_title(f"Run {data.name}: core utilisation and task executions")
    handles += ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=max(1, min(6, len(handles))), fontsize=8, frameon=False)
    return _save(fig, path)


WIDTH_IN, MAX_WIDTH_IN = 11.0, 22.0
"""Width of a figure (inches), and the most the heatmap widens to for short executions."""
LABEL_MIN_IN = 0.14
"""Width (inches) a box needs for an upright label in 6-point type."""


def heatmap_width(data: RunData) -> float:
    """Width of the heatmap (inches): wide enough that the shortest execution's box can
    hold an upright label, up to :data:`MAX_WIDTH_IN` (beyond, the narrowest go unlabelled;
    the page's table lists every execution)."""
    lo, hi = time_axis(data)
    spans = [b - a for v in running_spans(data).values() for a, b in v if b > a]
    if not spans:
        return WIDTH_IN
    plot_in = 0.65 * WIDTH_IN  # the axes' share of the figure, beside the colour bar
    need = LABEL_MIN_IN * (hi - lo) / min(spans)
    return float(min(MAX_WIDTH_IN, max(WIDTH_IN, WIDTH_IN * need / plot_in)))


BOX_HEIGHT = 0.76
"""Height of an execution's box, in rows."""


def label_options(task: str, execution: str) -> list[tuple[str, float, float]]:
    """Ways to write an execution's label, best first: (text, rotation, font size)."""
    short = execution[:6]
    return [(f"{task}\n{short}", 0, 7), (f"{task} {short}", 90, 7), (f"{task}\n{short}", 90, 6),
            (task, 90, 6), (short, 90, 6)]


def _execution_boxes(ax: Any, data: RunData, rows: dict[tuple[str, int], int], t0: float
                     ) -> list[Any]:
    """Draw each running span as a box per held core, labelled on its first core with the
    first way of writing the label that fits inside the box (so a short execution between
    two others keeps its label, turned upright); returns the legend handles."""
    from matplotlib.patches import Patch, Rectangle

    colours = task_colours([e["task"] for e in data.executions])
    fit = LabelFitter(ax)
    spans = running_spans(data)
    for e in data.executions:
        for a, b in spans.get(e["id"], []):
            for i, c in enumerate(e["cores"]):
                row = rows.get((e["node"] or "", int(c)))
                if row is None:
                    continue
                box = Rectangle((a - t0, row - BOX_HEIGHT / 2), b - a, BOX_HEIGHT, lw=1.0,
                                fc=(*colours[e["task"]][:3], 0.35), ec=colours[e["task"]],
                                hatch="xx" if e["state"] == "failed" else None)
                ax.add_patch(box)
                if i == 0:
                    fit.label(box, e["task"], e["id"])
    fit.close()
    handles = [Patch(fc=(*c[:3], 0.35), ec=c, label=f"task {t}") for t, c in colours.items()]
    if any(e["state"] == "failed" for e in data.executions):
        handles.append(Patch(fc="white", ec="grey", hatch="xx", label="failed"))
    return handles


class LabelFitter:
    """Writes each execution's label inside its box in the first form that fits.

    A form's size is measured once per task name, with the id written as ``000000``:
    digits are the widest hex characters, so a label judged to fit does fit.
    """

    PAD_PX = 2.0
    """Room kept between a label and its box's edge, on each side (pixels)."""

    def __init__(self, ax: Any) -> None:
        self.ax, self.renderer = ax, ax.figure.canvas.get_renderer()
        self.probe = ax.text(0, 0, "")  # measured only: removed before drawing
        self.sizes: dict[tuple[str, float, float], tuple[float, float]] = {}

    def _size(self, text: str, rotation: float, points: float) -> tuple[float, float]:
        key = (text, rotation, points)
        if key not in self.sizes:
            self.probe.set(text=text, rotation=rotation, fontsize=points)
            extent = self.probe.get_window_extent(self.renderer)
            self.sizes[key] = (extent.width, extent.height)
        return self.sizes[key]

    def label(self, box: Any, task: str, execution: str) -> Any:
        """The label written in ``box``, or None (nothing written) when no form fits."""
        inside = box.get_window_extent(self.renderer)
        widest = "0" * len(execution[:6])
        for (text, rotation, points), (probe, _, _) in zip(
                label_options(task, execution), label_options(task, widest), strict=True):
            width, height = self._size(probe, rotation, points)
            if (width + 2 * self.PAD_PX <= inside.width
                    and height + 2 * self.PAD_PX <= inside.height):
                return self.ax.text(box.get_x() + box.get_width() / 2,
                                    box.get_y() + box.get_height() / 2, text, ha="center",
                                    va="center", fontsize=points, rotation=rotation,
                                    clip_on=True,
                                    bbox={"fc": "white", "alpha": 0.7, "lw": 0, "pad": 1})
        return None

    def close(self) -> None:
        self.probe.remove()


def settled(q: QueueSeries, within_s: float = 0.05) -> QueueSeries:
    """Drop values that last under ``within_s`` (a task ending and the next being placed)."""
    if q.t.size < 2:
        return q
    keep = np.append(np.diff(q.t) > within_s, True)
    return QueueSeries(q.t[keep], q.queued[keep], q.running[keep], q.paused[keep])


def queue_figure(data: RunData, q: QueueSeries, path: Path) -> Path:
    """(b) Queued and running executions over time."""
    plt = _plt()
    t0 = origin(data)
    lo, hi = time_axis(data)
    fig, ax = plt.subplots(figsize=(11, 3.6))
    q = settled(q)
    if q.t.size:
        x = np.concatenate([[lo], q.t - t0, [hi]])
        for values, label in ((q.queued, "queued"), (q.running, "running (holding cores)"),
                              (q.paused, "paused")):
            if label == "paused" and not values.any():
                continue
            ax.step(x, np.concatenate([[0], values, values[-1:]]), where="post", label=label,
                    lw=1.6)
    _sim_end_line(ax, data, t0)
    _time_x(ax, data)
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
    t0 = origin(data)
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
    _time_x(bottom, data)
    lines = bottom.get_legend_handles_labels(), right.get_legend_handles_labels()
    bottom.legend(lines[0][0] + lines[1][0], lines[0][1] + lines[1][1], loc="lower right",
                  fontsize=8)
    return _save(fig, path)


def phases_figure(data: RunData, path: Path) -> Path | None:
    """(d) Simulation phases per rank over time; None when the run recorded none."""
    if not data.phases:
        return None
    plt = _plt()
    t0 = origin(data)
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
    _time_x(ax, data)
    ax.set_title(f"Run {data.name}: simulation phases")
    return _save(fig, path)
