"""Joules and gCO2 per execution and per node, from the run's power samples.

An execution gets the share of its node's energy equal to its share of the CPU
seconds used on the node while it ran (odop.energy.accounting's model). The task's
own CPU seconds are known only in total, so they are spread evenly over its run; the
node's CPU seconds come from the per-core utilisation samples. Where the samples
show no CPU use over the execution (it fell outside the sampled span), its share is
its CPU seconds over the node's core-seconds in that time, and the label says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from odop.energy.accounting import ExecutionEnergy, account_execution, interval_energy
from odop.energy.forecast import Forecast
from odop.energy.planner import J_PER_KWH
from odop.energy.signals.static import StaticSignal
from odop.report.data import NodeSamples, RunData


def run_signal(data: RunData) -> Forecast:
    """The grid signal for the run: a static intensity (config ``energy.carbon`` or the default).

    Covers the run with one-hour slots; a recorded signal (meta ``grid_signal`` with
    ``start``, ``resolution_s``, ``carbon``, ``source``) is used when present.
    """
    rec = data.meta.get("grid_signal")
    if isinstance(rec, dict) and rec.get("carbon"):
        return Forecast(np.asarray(rec["start"], float), float(rec["resolution_s"]),
                        np.asarray(rec["carbon"], float), source=str(rec.get("source", "recorded")))
    cfg = data.meta.get("config") or {}
    energy_cfg = cfg.get("energy") or (cfg.get("extra") or {}).get("energy") or {}
    carbon = energy_cfg.get("carbon_g_per_kwh") or energy_cfg.get("carbon")
    signal = StaticSignal(float(carbon)) if isinstance(carbon, (int, float)) else StaticSignal()
    t0 = (data.started or 0.0) - 3600.0
    return signal.forecast(t0, 4 * 3600.0 + _span(data))


def _span(data: RunData) -> float:
    ends = [e["ended_at"] for e in data.executions if e["ended_at"]]
    last = max([*ends, *(float(s.t[-1]) for s in data.nodes.values() if s.t.size)], default=0.0)
    return max(0.0, last - (data.started or last))


def cumulative_cpu(s: NodeSamples) -> tuple[np.ndarray, np.ndarray]:
    """(edges, cumulative CPU seconds of the whole node at each edge)."""
    return s.edges(), np.concatenate([[0.0], np.cumsum(s.busy * s.dt)])


def execution_energy(e: dict[str, Any], s: NodeSamples | None, signal: Forecast
                     ) -> ExecutionEnergy | None:
    """Account one finished execution; None without a run interval or power samples."""
    start, end, cpu_s = e["started_at"], e["ended_at"], e["cpu_s"]
    if s is None or start is None or end is None or end <= start or cpu_s is None:
        return None
    ok = ~np.isnan(s.watts)
    if not ok.any():
        return None
    inside = s.t[(s.t > start) & (s.t < end)]
    grid = np.concatenate([[start], inside, [end]])
    watts = np.interp(grid, s.t[ok], s.watts[ok])
    edges, cum = cumulative_cpu(s)
    total = np.interp(grid, edges, cum)
    task = cpu_s * (grid - start) / (end - start)
    source = s.power_source
    if total[-1] - total[0] <= 1e-9:  # outside the sampled span: share by core-seconds
        share = min(1.0, cpu_s / ((end - start) * max(len(s.core_ids), 1)))
        return account_execution(e["id"], grid, watts, signal, f"{source} (core-share)",
                                 task_watts=watts * share, submitted_at=e["submitted_at"])
    return account_execution(e["id"], grid, watts, signal, source, task_cpu_s=task,
                             total_cpu_s=total, submitted_at=e["submitted_at"])


def all_executions(data: RunData, signal: Forecast) -> dict[str, ExecutionEnergy]:
    """Energy of every execution that ran, by execution id."""
    out = {}
    for e in data.executions:
        acc = execution_energy(e, data.nodes.get(e["node"] or ""), signal)
        if acc is not None:
            out[e["id"]] = acc
    return out


@dataclass(frozen=True)
class NodeEnergy:
    """A node's power and emissions over the sampled span (arrays per sample)."""

    t: np.ndarray
    watts: np.ndarray
    carbon: np.ndarray
    """Grid intensity in force at each sample (gCO2/kWh)."""
    cum_gco2: np.ndarray
    """Cumulative gCO2 of the whole node from its first sample."""
    joules: float
    power_source: str


def node_energy(s: NodeSamples, signal: Forecast) -> NodeEnergy:
    """Trapezoid of the node's power and the intensity at each sample."""
    ok = ~np.isnan(s.watts)
    t, w = s.t[ok], s.watts[ok]
    carbon = np.array([signal.value_at(x) for x in t])
    joules = interval_energy(t, w) if t.size > 1 else np.zeros(0)
    mean_c = (carbon[1:] + carbon[:-1]) / 2.0 if t.size > 1 else np.zeros(0)
    cum = np.concatenate([[0.0], np.cumsum(joules / J_PER_KWH * mean_c)]) if t.size else t
    return NodeEnergy(t, w, carbon, cum, float(joules.sum()), s.power_source)
