"""Deferral planner: the start time that minimises a task's emissions (or cost).

A task of duration D (s) and energy E (J) at constant power E/D (W) started at s
costs (E/D) * integral of the signal over [s, s + D] / 3.6e6 -> grams of CO2 when the
signal is gCO2/kWh (or / 3.6e9 -> currency when it is currency/MWh). With
piecewise-constant slots this cost is piecewise linear in s, with kinks only where s
or s + D crosses a slot boundary; so the exact optimum over the continuous interval
[earliest, latest] lies in {earliest, latest} U {b_i} U {b_i - D}, all of which are
scored (vectorised over tasks and candidates). latest = min(deadline, allocation
end) - D; when latest < earliest nothing fits and the task starts at ``earliest``.
Ties go to the earlier start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from odop.energy.forecast import Forecast, cumulative, integral_to

#: Divide (watts x signal x seconds) by this to get grams (signal in gCO2/kWh).
J_PER_KWH = 3.6e6
#: Divide (watts x signal x seconds) by this to get currency (signal in currency/MWh).
J_PER_MWH = 3.6e9


def unit_divisor(kind: str) -> float:
    """J per kWh for carbon (g/kWh), J per MWh for price (currency/MWh)."""
    return J_PER_KWH if kind == "carbon" else J_PER_MWH


@dataclass(frozen=True)
class Decision:
    """Where a task should start: ``start`` (unix s), its ``cost`` (g or currency), whether
    it ``fits`` before min(deadline, allocation end), and the mean signal it would see."""

    start: float
    cost: float
    fits: bool
    mean_signal: float


@dataclass(frozen=True)
class BatchPlan:
    """Vectorised result of ``plan_many``: arrays of starts (s), costs, and fits flags."""

    start: np.ndarray
    cost: np.ndarray
    fits: np.ndarray


def window_costs(forecast: Forecast, starts: np.ndarray, durations: np.ndarray,
                 energies: np.ndarray, kind: str = "carbon") -> np.ndarray:
    """Cost (g or currency) of running each task over [start, start + duration]."""
    cum = cumulative(forecast, kind)
    durations = np.maximum(durations, 1e-9)
    integral = (integral_to(forecast, starts + durations, cum, kind)
                - integral_to(forecast, starts, cum, kind))
    return energies / durations * integral / unit_divisor(kind)


def _candidates(forecast: Forecast, earliest: np.ndarray, latest: np.ndarray,
                durations: np.ndarray) -> np.ndarray:
    """(tasks x candidates) start times; out-of-range ones are clipped to earliest."""
    bounds = forecast.start[0] + forecast.resolution_s * np.arange(forecast.start.size + 1)
    cand = np.concatenate([
        earliest[:, None], latest[:, None],
        np.broadcast_to(bounds, (earliest.size, bounds.size)),
        bounds[None, :] - durations[:, None]], axis=1)
    ok = (cand >= earliest[:, None]) & (cand <= latest[:, None])
    return np.where(ok, cand, earliest[:, None])


def plan_many(forecast: Forecast, durations: np.ndarray, energies: np.ndarray,
              earliest: np.ndarray | float, deadlines: np.ndarray | float,
              alloc_end: float = math.inf, kind: str = "carbon") -> BatchPlan:
    """Best start of each task (no capacity limit); arrays in s, J, unix s."""
    durations = np.asarray(durations, float)
    energies = np.broadcast_to(np.asarray(energies, float), durations.shape)
    first = np.broadcast_to(np.asarray(earliest, float), durations.shape).copy()
    end_by = np.minimum(np.broadcast_to(np.asarray(deadlines, float), durations.shape), alloc_end)
    latest = end_by - durations
    fits = latest >= first
    latest = np.where(fits, latest, first)
    cand = _candidates(forecast, first, latest, durations)
    d2 = np.broadcast_to(durations[:, None], cand.shape)
    e2 = np.broadcast_to(energies[:, None], cand.shape)
    costs = window_costs(forecast, cand, d2, e2, kind)
    best = costs.min(axis=1)
    tol = np.abs(best) * 1e-12 + 1e-15
    start = np.where(costs <= (best + tol)[:, None], cand, np.inf).min(axis=1)
    return BatchPlan(start, best, fits)


def plan_start(forecast: Forecast, duration_s: float, energy_j: float, now: float,
               deadline: float = math.inf, alloc_end: float = math.inf,
               kind: str = "carbon") -> Decision:
    """Best start for one task: not before ``now``, ending by min(deadline, alloc_end)."""
    if not math.isfinite(min(deadline, alloc_end)):
        deadline = max(now, forecast.end) + duration_s  # unbounded: look over the forecast
    plan = plan_many(forecast, np.array([duration_s]), np.array([energy_j]), now,
                     deadline, alloc_end, kind)
    start, cost = float(plan.start[0]), float(plan.cost[0])
    mean = cost * unit_divisor(kind) / energy_j if energy_j > 0 else forecast.value_at(start, kind)
    return Decision(start, cost, bool(plan.fits[0]), mean)


def bucket_heuristic(forecast: Forecast, duration_s: float, now: float,
                     deadline: float = math.inf, alloc_end: float = math.inf,
                     bucket_s: float = 7200.0, kind: str = "carbon") -> float:
    """The classic baseline: rank fixed 2-hour bucket averages, start at the best bucket.

    Buckets start at the first slot boundary at or after ``now`` (the current partial
    slot is ignored) and are ``bucket_s`` long; the best-ranked bucket whose start
    still lets the task end by min(deadline, alloc_end) wins; none -> start now.
    """
    res = forecast.resolution_s
    first = forecast.start[0] + math.ceil((now - forecast.start[0]) / res - 1e-9) * res
    end_by = min(deadline, alloc_end)
    latest = end_by - duration_s
    if latest < first:
        return now
    horizon_end = max(forecast.end, first + bucket_s)
    n = max(1, int((min(horizon_end, latest + bucket_s) - first) // bucket_s))
    b0 = first + bucket_s * np.arange(n)
    b0 = b0[b0 <= latest]
    if b0.size == 0:
        return now
    cum = cumulative(forecast, kind)
    means = (integral_to(forecast, b0 + bucket_s, cum, kind)
             - integral_to(forecast, b0, cum, kind)) / bucket_s
    return float(b0[int(np.argmin(means))])
