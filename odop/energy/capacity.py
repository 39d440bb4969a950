"""Deferral under a concurrency limit: greedy placement by marginal cost.

Each task in turn (least slack first, so tight tasks keep their only window and
loose ones fill the clean slots left) takes its cheapest start whose run keeps the
number of concurrent tasks below ``capacity`` on an occupancy grid of ``grid_s``
cells (a task occupies every cell it overlaps, so the limit is never exceeded).
Candidate starts are those of the
unconstrained planner plus every grid cell. A task with no feasible start before its
end bound is placed at the earliest cell with room (``fits`` False).
"""

from __future__ import annotations

import math

import numpy as np

from odop.energy.forecast import Forecast
from odop.energy.planner import BatchPlan, window_costs


class CapacityPlanner:
    """Reservations on a grid from ``t0`` to ``t_end`` (unix s) with ``capacity`` slots."""

    def __init__(self, forecast: Forecast, t0: float, t_end: float, capacity: int,
                 grid_s: float = 300.0, kind: str = "carbon") -> None:
        self.forecast, self.t0, self.capacity, self.grid_s, self.kind = (
            forecast, t0, capacity, grid_s, kind)
        self.cells = max(1, math.ceil((t_end - t0) / grid_s))
        self.occupancy = np.zeros(self.cells, dtype=np.int32)

    def _spans(self, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c0 = np.clip(np.floor((start - self.t0) / self.grid_s + 1e-9), 0, self.cells)
        c1 = np.clip(np.ceil((end - self.t0) / self.grid_s - 1e-9), c0, self.cells)
        return c0.astype(np.int64), c1.astype(np.int64)

    def reserve(self, start: float, end: float) -> None:
        """Count a (running or planned) task over [start, end)."""
        c0, c1 = self._spans(np.array([start]), np.array([end]))
        self.occupancy[c0[0]:c1[0]] += 1

    def _feasible(self, starts: np.ndarray, duration: float) -> np.ndarray:
        full = np.concatenate([[0], np.cumsum(self.occupancy >= self.capacity)])
        c0, c1 = self._spans(starts, starts + duration)
        return full[c1] - full[c0] == 0

    def place(self, duration: float, energy: float, earliest: float,
              end_by: float) -> tuple[float, float, bool]:
        """Reserve the cheapest feasible start; returns (start, cost, fits)."""
        latest = end_by - duration
        g0 = max(0, math.ceil((earliest - self.t0) / self.grid_s))
        g1 = min(self.cells, math.floor((latest - self.t0) / self.grid_s)) if latest >= earliest \
            else g0 - 1
        grid = self.t0 + self.grid_s * np.arange(g0, g1 + 1)
        bounds = self.forecast.start[0] + self.forecast.resolution_s * np.arange(
            self.forecast.start.size + 1)
        cand = np.concatenate([[earliest, latest], grid, bounds, bounds - duration])
        cand = cand[(cand >= earliest) & (cand <= latest)]
        cand = cand[self._feasible(cand, duration)] if cand.size else cand
        if cand.size:
            costs = window_costs(self.forecast, cand, np.full(cand.size, duration),
                                 np.full(cand.size, energy), self.kind)
            best = costs.min()
            start = float(cand[costs <= best + abs(best) * 1e-12 + 1e-15].min())
            self.reserve(start, start + duration)
            return start, float(best), True
        late = self.t0 + self.grid_s * np.arange(g0, self.cells + 1)
        ok = late[self._feasible(late, duration)] if late.size else late
        start = float(ok[0]) if ok.size else max(earliest, self.t0 + self.grid_s * self.cells)
        start = max(start, earliest)
        self.reserve(start, start + duration)
        cost = window_costs(self.forecast, np.array([start]), np.array([duration]),
                            np.array([energy]), self.kind)[0]
        return start, float(cost), False


def plan_with_capacity(forecast: Forecast, durations: np.ndarray, energies: np.ndarray,
                       earliest: np.ndarray, deadlines: np.ndarray, capacity: int,
                       alloc_end: float = math.inf, busy: tuple[tuple[float, float], ...] = (),
                       grid_s: float = 300.0, kind: str = "carbon") -> BatchPlan:
    """Greedy capacity-aware plan; ``busy`` holds (start, end) of tasks already running."""
    durations = np.asarray(durations, float)
    energies = np.asarray(energies, float)
    earliest = np.asarray(earliest, float)
    end_by = np.minimum(np.asarray(deadlines, float), alloc_end)
    t0 = float(min(earliest.min(initial=math.inf), *(b[0] for b in busy))) if busy else float(
        earliest.min())
    t_end = float(max(np.max(np.maximum(end_by, earliest + durations)), forecast.end))
    planner = CapacityPlanner(forecast, t0, t_end + grid_s, capacity, grid_s, kind)
    for s, e in busy:
        planner.reserve(s, e)
    start, cost = np.empty(durations.size), np.empty(durations.size)
    fits = np.zeros(durations.size, dtype=bool)
    for j in np.argsort(end_by - durations - earliest, kind="stable"):
        start[j], cost[j], fits[j] = planner.place(durations[j], energies[j], earliest[j],
                                                   end_by[j])
    return BatchPlan(start, cost, fits)
