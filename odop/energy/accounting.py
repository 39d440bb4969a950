"""Energy (J) and emissions (gCO2) per execution, per run, and against alternatives.

Power model: between two samples the node's energy is the trapezoid of its power
(W x s = J). An execution gets the share of it equal to its CPU-time share (user +
system seconds of its process tree over those of every process on the node in the
interval); where a per-process measurement exists (e.g. a GPU's own counter) it is
used instead. Emissions: g = kWh x intensity, integrated over the execution's actual
run (energy of each interval x intensity in force then). Every figure carries the
label of its power source ('rapl', 'nvml', 'model', ...) and of its signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from odop.energy.forecast import Forecast, integrate
from odop.energy.planner import J_PER_KWH


@dataclass(frozen=True)
class ExecutionEnergy:
    """One execution: ``joules``, ``gco2``, its run [start, end] (unix s) and labels."""

    execution_id: str
    joules: float
    gco2: float
    start: float
    end: float
    power_source: str
    signal_source: str
    submitted_at: float | None = None

    @property
    def kwh(self) -> float:
        """Energy in kWh."""
        return self.joules / J_PER_KWH


def interval_energy(times: np.ndarray, watts: np.ndarray) -> np.ndarray:
    """Joules in each interval between consecutive samples (trapezoid)."""
    times, watts = np.asarray(times, float), np.asarray(watts, float)
    return np.diff(times) * (watts[1:] + watts[:-1]) / 2.0


def cpu_share_energy(times: np.ndarray, node_watts: np.ndarray, task_cpu_s: np.ndarray,
                     total_cpu_s: np.ndarray) -> np.ndarray:
    """Joules per interval attributed to a task by its CPU-time share.

    ``task_cpu_s`` and ``total_cpu_s`` are cumulative CPU seconds (user + system) at
    each sample time: the task's process tree and all processes on the node.
    """
    d_task = np.diff(np.asarray(task_cpu_s, float))
    d_total = np.diff(np.asarray(total_cpu_s, float))
    share = np.divide(d_task, d_total, out=np.zeros_like(d_task), where=d_total > 0)
    return interval_energy(times, node_watts) * np.clip(share, 0.0, 1.0)


def grams_co2(times: np.ndarray, joules: np.ndarray, signal: Forecast) -> float:
    """gCO2 of per-interval energies, each at the mean intensity over its interval."""
    times = np.asarray(times, float)
    if times.size < 2:
        return 0.0
    dt = np.diff(times)
    integral = integrate(signal, times[:-1], times[1:], "carbon")
    mean = np.divide(integral, dt, out=np.array([signal.value_at(t) for t in times[:-1]]),
                     where=dt > 0)
    return float(np.sum(np.asarray(joules) / J_PER_KWH * mean))


def account_execution(execution_id: str, times: np.ndarray, node_watts: np.ndarray,
                      signal: Forecast, power_source: str, *,
                      task_cpu_s: np.ndarray | None = None,
                      total_cpu_s: np.ndarray | None = None,
                      task_watts: np.ndarray | None = None,
                      submitted_at: float | None = None) -> ExecutionEnergy:
    """Account one execution from the samples taken while it ran.

    Give ``task_watts`` (measured per process) or both CPU-second series.
    """
    times = np.asarray(times, float)
    if task_watts is not None:
        joules = interval_energy(times, task_watts)
    elif task_cpu_s is not None and total_cpu_s is not None:
        joules = cpu_share_energy(times, node_watts, task_cpu_s, total_cpu_s)
    else:
        raise ValueError(f"execution {execution_id!r}: need task_watts or both CPU-second series")
    return ExecutionEnergy(execution_id, float(joules.sum()), grams_co2(times, joules, signal),
                           float(times[0]), float(times[-1]), power_source, signal.source,
                           submitted_at)


@dataclass(frozen=True)
class RunTotals:
    """Sums over a run: joules, kWh, gCO2, executions, and the labels involved."""

    joules: float
    gco2: float
    executions: int
    power_sources: tuple[str, ...]
    signal_sources: tuple[str, ...]

    @property
    def kwh(self) -> float:
        """Energy in kWh."""
        return self.joules / J_PER_KWH


def run_totals(accounts: Sequence[ExecutionEnergy]) -> RunTotals:
    """Totals of a run's executions."""
    return RunTotals(sum(a.joules for a in accounts), sum(a.gco2 for a in accounts),
                     len(accounts), tuple(sorted({a.power_source for a in accounts})),
                     tuple(sorted({a.signal_source for a in accounts})))


@dataclass(frozen=True)
class Comparison:
    """An alternative's figures beside the actual run: what it would have cost."""

    label: str
    joules: float
    gco2: float
    power_source: str
    actual_gco2: float

    @property
    def saving_gco2(self) -> float:
        """Grams the actual run saved against this alternative (negative: it cost more)."""
        return self.gco2 - self.actual_gco2
