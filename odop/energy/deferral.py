"""Capacity-aware deferral: when each waiting deferrable execution should start.

One planner per scheduler (owned by ``EnergyPolicy``). It knows the deferrable
executions that wait, those running (their cores until their expected end), the
forecast, and the cores odop expects to have in each forecast slot; it keeps one plan,
a start per waiting execution. The plan is re-made from scratch whenever one of these
changes (an arrival, a start, a completion earlier than expected, a new forecast or
capacity), so a plan stays movable until its task starts.

Algorithm: least-slack-first slot filling (list scheduling in order of latest start,
the non-preemptive form of earliest-deadline-first) on a grid of ``grid_s`` cells
aligned on the forecast's slots. Each execution in turn takes the start that minimises
its cost, the signal integrated over its whole expected run (not the value at one
point), among the starts whose cores fit under the capacity of every cell its run
overlaps (a run counts in every cell it touches, so the capacity is never exceeded).
Candidates are every cell start, the earliest and latest start, and every slot boundary
b and b - duration (where the cost has its kinks), so without a capacity limit the
start is the exact optimum.
Executions with more than ``urgent_s`` of slack plan into the capacity less a
``headroom`` share, kept for tasks with little slack that may arrive, and no later than
``urgent_s`` before their latest start (a margin against what arrives later); one with
less slack, or that finds no room so, takes the earliest room before its latest start,
headroom included. An execution with no room at all
before its latest start is marked ``fits`` False and due at once: the planner never
holds a task past its latest start, so deferral causes no miss that starting at once
would have avoided.

Cost per re-plan: O(n x (cells + candidates)) numpy work for n waiting executions
(docs/energy.md gives the measured figure); without a capacity limit executions do not
interact and only new ones are planned, vectorised.

Units: unix seconds, seconds, joules, watts, cores.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from odop.energy.forecast import Forecast, cumulative, integral_to
from odop.energy.planner import plan_many

HEADROOM = 0.025
"""Share of each cell's cores that executions with slack to spare leave free."""
URGENT_S = 1800.0
"""Slack (s) at or below which an execution may use every core of a cell."""
GRID_S = 300.0
"""Cell length (s) of the occupancy grid (at most the forecast's slot)."""


@dataclass
class Job:
    """A waiting execution: ``cores`` for ``duration_s`` at ``watts``, to run within
    [earliest, end_by] (unix s)."""

    key: Hashable
    cores: float
    duration_s: float
    watts: float
    earliest: float
    end_by: float
    seq: int

    @property
    def latest(self) -> float:
        """The latest start that still ends by ``end_by`` (unix s)."""
        return self.end_by - self.duration_s


class DeferralPlanner:
    """Plans when waiting deferrable executions start (see the module docstring)."""

    def __init__(self, kind: str = "carbon", *, grid_s: float = GRID_S,
                 headroom: float = HEADROOM, urgent_s: float = URGENT_S) -> None:
        if not 0 <= headroom < 1:
            raise ValueError(f"deferral headroom = {headroom}; must be a share in [0, 1)")
        self.kind, self.grid_s, self.headroom, self.urgent_s = kind, grid_s, headroom, urgent_s
        self.jobs: dict[Hashable, Job] = {}
        self.running: dict[Hashable, tuple[float, float]] = {}
        """key -> (cores, expected end, unix s) of executions that have started."""
        self.starts: dict[Hashable, float] = {}
        self.fits: dict[Hashable, bool] = {}
        self.forecast: Forecast | None = None
        self.capacity: np.ndarray | float = math.inf
        """Cores per forecast slot (held past the last), or one number for all."""
        self.replans = 0
        """Plans made so far (each one over every waiting execution when capped)."""
        self._dirty = False
        self._seq = 0
        self._left: dict[Hashable, tuple[float, bool]] = {}
        """Planned (start, fits) of executions removed since the last plan: those that
        do not start as planned (cancelled ones) make the next answer re-plan."""

    # -- what the planner is told ---------------------------------------------------------
    def add(self, key: Hashable, *, cores: float, duration_s: float, energy_j: float,
            earliest: float, end_by: float) -> None:
        """A new waiting execution (an arrival): the plan is re-made before the next answer."""
        self._seq += 1
        watts = energy_j / duration_s if duration_s > 0 else 0.0
        self.jobs[key] = Job(key, max(cores, 0.0), duration_s, watts, earliest, end_by,
                             self._seq)
        self._dirty = True

    def remove(self, key: Hashable) -> None:
        """Forget a waiting execution (cancelled, or placed by the scheduler)."""
        if self.jobs.pop(key, None) is None:
            return
        if key in self.starts:  # re-planned at the next answer unless it starts as planned
            self._left[key] = (self.starts.pop(key), self.fits.pop(key))
        else:
            self._dirty = True

    def start(self, key: Hashable, now: float, cores: float, duration_s: float) -> None:
        """An execution started at ``now`` holding ``cores`` for about ``duration_s``; the
        plan is re-made unless it started where the plan had it."""
        self.remove(key)
        planned, fits = self._left.pop(key, (None, False))
        self.running[key] = (cores, now + duration_s)
        if planned is None or not fits or abs(planned - now) >= self.grid_s / 2:
            self._dirty = True

    def finish(self, key: Hashable, now: float) -> None:
        """A running execution ended; the plan is re-made if it ended before expected."""
        held = self.running.pop(key, None)
        if held is not None and now < held[1] - self.grid_s / 2:
            self._dirty = True

    def set_forecast(self, forecast: Forecast) -> None:
        """The forecast to plan on (a different object re-plans everything)."""
        if forecast is not self.forecast:
            self.forecast, self._dirty = forecast, True
            self.starts.clear()

    def set_capacity(self, capacity: np.ndarray | float) -> None:
        """Cores odop expects per forecast slot (an array as long as the forecast's
        values), or one number for every slot; ``math.inf``: no limit."""
        same = (np.array_equal(capacity, self.capacity) if isinstance(capacity, np.ndarray)
                else not isinstance(self.capacity, np.ndarray) and capacity == self.capacity)
        if not same:
            self.capacity, self._dirty = capacity, True
            self.starts.clear()

    # -- answers --------------------------------------------------------------------------
    def start_of(self, key: Hashable, now: float) -> float | None:
        """The planned start (unix s) of a waiting execution; None when it is unknown."""
        self.plan(now)
        return self.starts.get(key)

    def due(self, now: float) -> list[Hashable]:
        """Waiting executions whose planned start has come, least slack first."""
        self.plan(now)
        ready = [self.jobs[k] for k, s in self.starts.items() if s <= now]
        return [j.key for j in sorted(ready, key=lambda j: (j.latest, j.seq))]

    def plan(self, now: float) -> None:
        """Re-make the plan if anything it depends on changed."""
        if self.forecast is None or not self.jobs:
            return
        if not (self._dirty or self._left) and len(self.starts) == len(self.jobs):
            return
        self._dirty = False
        self._left.clear()
        self.replans += 1
        if self._unlimited():
            self._plan_unlimited(now)
        else:
            _Grid(self, now).fill()

    def _unlimited(self) -> bool:
        return not isinstance(self.capacity, np.ndarray) and math.isinf(self.capacity)

    def _plan_unlimited(self, now: float) -> None:
        """Executions do not interact: plan each new one alone, vectorised."""
        new = [j for k, j in self.jobs.items() if k not in self.starts]
        if not new or self.forecast is None:
            return
        dur = np.array([j.duration_s for j in new])
        first = np.array([max(j.earliest, now) for j in new])
        plan = plan_many(self.forecast, dur, np.array([j.watts for j in new]) * dur, first,
                         np.array([j.end_by for j in new]), kind=self.kind)
        for j, s, ok in zip(new, plan.start, plan.fits, strict=True):
            self.starts[j.key], self.fits[j.key] = float(s), bool(ok)


class _Grid:
    """One capped re-plan: the occupancy grid (cells aligned on the forecast's slots, from
    the cell holding ``now``) and the slot filling."""

    def __init__(self, planner: DeferralPlanner, now: float) -> None:
        fc = planner.forecast
        assert fc is not None
        self.p, self.now, self.fc = planner, now, fc
        self.g = g = min(planner.grid_s, fc.resolution_s)
        self.origin = fc.start[0] + math.floor((now - fc.start[0]) / g) * g  # cells on slots
        far = max(fc.end, now)
        horizon = max([min(j.end_by, far + j.duration_s) for j in planner.jobs.values()]
                      + [e for _, e in planner.running.values()] + [now + g])
        self.n = n = int(math.ceil((horizon - self.origin) / g)) + 1
        self.cap = self._cell_capacity(n)
        self.loose = np.floor(self.cap * (1 - planner.headroom) + 1e-9)
        self.occ = np.zeros(n)
        for cores, end in planner.running.values():
            self.occ[:self._cell_end(max(end, now + g))] += cores
        self.cum = cumulative(fc, planner.kind)
        bounds = fc.start[0] + fc.resolution_s * np.arange(fc.start.size + 1)
        self.bounds = bounds[(bounds >= self.origin) & (bounds <= self.origin + n * g)]

    def _cell_capacity(self, n: int) -> np.ndarray:
        """Cores per cell: the least of the slots the cell overlaps."""
        cap = self.p.capacity
        if not isinstance(cap, np.ndarray):
            return np.full(n, float(cap))
        t = self.origin + self.g * np.arange(n)
        res, t0 = self.fc.resolution_s, self.fc.start[0]
        a = np.clip(((t - t0) // res).astype(np.int64), 0, cap.size - 1)
        b = np.clip(((t + self.g - 1e-6 - t0) // res).astype(np.int64), 0, cap.size - 1)
        return np.minimum(cap[a], cap[b]).astype(float)

    def _cell_end(self, t: float) -> int:
        return int(min(self.n, math.ceil((t - self.origin) / self.g - 1e-9)))

    def fill(self) -> None:
        """Place every waiting execution, least slack first."""
        p = self.p
        p.starts.clear()
        p.fits.clear()
        for job in sorted(p.jobs.values(), key=lambda j: (j.latest, j.seq)):
            p.starts[job.key], p.fits[job.key] = self._place(job)

    def _place(self, job: Job) -> tuple[float, bool]:
        """The cheapest start with room (reserved on the grid), and whether it fits."""
        e, latest, d = max(job.earliest, self.now), job.latest, job.duration_s
        safe = latest - self.p.urgent_s
        tries = ((safe, self.loose, True), (latest, self.cap, False)) if safe > e \
            else ((latest, self.cap, False),)
        for last, limit, cheapest in tries:
            cand = self._candidates(e, last, d)
            c0, c1 = self._spans(cand, d)
            ok = self._room(job.cores, limit, c0, c1)
            if ok.any():
                return self._take(job, cand[ok], c0[ok], c1[ok], cheapest), True
        return self._late(job, e), False

    def _candidates(self, e: float, latest: float, d: float) -> np.ndarray:
        g = self.g
        k0 = math.ceil((e - self.origin) / g - 1e-9)
        k1 = math.floor((latest - self.origin) / g + 1e-9)
        cells = self.origin + g * np.arange(k0, max(k0, k1 + 1))
        kinks = np.concatenate([self.bounds, self.bounds - d])
        kinks = kinks[(kinks >= e) & (kinks <= latest)]
        return np.concatenate([[e, latest], cells, kinks])

    def _spans(self, starts: np.ndarray, d: float) -> tuple[np.ndarray, np.ndarray]:
        rel = (starts - self.origin) / self.g  # >= 0: no start is before the plan's time
        c0 = np.minimum(np.floor(rel + 1e-9).astype(np.int64), self.n)
        c1 = np.ceil(rel + (d / self.g - 1e-9)).astype(np.int64)
        return c0, np.minimum(np.maximum(c1, c0 + 1), self.n)

    def _room(self, cores: float, limit: np.ndarray, c0: np.ndarray,
              c1: np.ndarray) -> np.ndarray:
        blocked = np.empty(self.n + 1)
        blocked[0] = 0
        np.cumsum(self.occ + cores > limit + 1e-9, out=blocked[1:])
        return blocked[c1] - blocked[c0] == 0

    def _take(self, job: Job, cand: np.ndarray, c0: np.ndarray, c1: np.ndarray,
              cheapest: bool) -> float:
        """Reserve the cheapest of ``cand`` (ties: the earliest), or the earliest, and
        return it."""
        pick = np.arange(cand.size)
        if cheapest:
            kind = self.p.kind
            cost = (integral_to(self.fc, cand + job.duration_s, self.cum, kind)
                    - integral_to(self.fc, cand, self.cum, kind))
            best = cost.min()
            pick = np.flatnonzero(cost <= best + abs(best) * 1e-12 + 1e-12)
        i = pick[np.argmin(cand[pick])]
        self.occ[c0[i]:c1[i]] += job.cores
        return float(cand[i])

    def _late(self, job: Job, e: float) -> float:
        """No room before the latest start: the first cell with room (reserved), or
        ``e``; the execution is due at once either way (``fits`` False)."""
        k0 = math.ceil((e - self.origin) / self.g - 1e-9)
        cand = self.origin + self.g * np.arange(k0, self.n)
        c0, c1 = self._spans(cand, job.duration_s)
        ok = self._room(job.cores, self.cap, c0, c1)
        if ok.any():
            i = int(np.argmax(ok))
            self.occ[c0[i]:c1[i]] += job.cores
        return e
