"""The scheduler's energy policy: when a task may start, how many at once, node power caps.

One ``EnergyPolicy`` per scheduler, built from the ``[energy]`` config section
(odop.energy.settings). It reads the grid signal through a provider whose network
fetches run on a background thread (``start``/``stop``), so no call here waits on the
network. The forecast is re-read at most every ``check_s`` seconds or at a slot
boundary and levels are computed once per read. Deferrable executions are planned
together, into the cores odop expects per slot, by one DeferralPlanner
(odop.energy.deferral), re-planned when an execution arrives, starts or ends early,
or the forecast or the capacity changes; a repeated answer is a dict lookup. Any signal
problem makes the policy answer as a plain scheduler would (start now, base
concurrency) and shows in ``status``.

Units: unix seconds, seconds, joules, watts, gCO2/kWh, currency/MWh, cores.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from odop.energy.deferral import DeferralPlanner
from odop.energy.errors import EnergyError
from odop.energy.forecast import cumulative, integral_to
from odop.energy.outlook import Outlook, View
from odop.energy.planner import J_PER_KWH
from odop.energy.policy import (
    DEFAULT_SCALING,
    CarbonLevel,
    ConcurrencyScaler,
    PriorityThresholds,
)
from odop.energy.powercap import NodeCaps
from odop.energy.settings import EnergySettings, make_provider, parse_level, parse_settings
from odop.energy.signals import SignalProvider, StaticSignal

log = logging.getLogger("odop.scheduler.energy")
MAX_ANSWERS = 20000
"""Threshold answers kept before those of older forecast views are dropped."""


class EnergyPolicy:
    """Energy decisions for one scheduler (see the module docstring)."""

    def __init__(self, settings: EnergySettings, provider: SignalProvider, *,
                 alloc_end: float | None = None, clock: Callable[[], float] = time.time) -> None:
        s = self.settings = settings
        self.provider, self.alloc_end, self.clock = provider, alloc_end, clock
        self.kind = s.signal_kind
        self.static = StaticSignal(carbon=s.carbon)
        self.thresholds = PriorityThresholds(s.priority_thresholds, s.threshold_default)
        self.scaler = ConcurrencyScaler({**DEFAULT_SCALING, **s.concurrency}, s.min_slots)
        self.outlook = Outlook(settings, provider)
        self.planner = DeferralPlanner(self.kind)
        self._planned_on: tuple[int, float] | None = None
        self._cores: int | None = None
        self._capacity_key: tuple | None = None
        self._capacity: np.ndarray | float = math.inf
        self._answers: dict[Any, tuple[View, float | None]] = {}
        self._cum: tuple[View | None, dict[str, np.ndarray]] = (None, {})
        self.caps = NodeCaps(settings)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None, alloc_end: float | None = None, *,
                    now: float | None = None, env: Mapping[str, str] | None = None,
                    clock: Callable[[], float] = time.time) -> EnergyPolicy:
        """Validate ``config.extra["energy"]`` and build the policy and its provider.

        Raises EnergyConfigError (a ConfigError) naming the bad key and the allowed ones.
        """
        settings = parse_settings(section)
        now = clock() if now is None else now
        return cls(settings, make_provider(settings, now=now, env=env), alloc_end=alloc_end,
                   clock=clock)

    def start(self) -> None:
        """Start the provider's background fetching (idempotent; never blocks)."""
        self.provider.start()

    def stop(self) -> None:
        """Stop background fetching."""
        self.provider.stop()

    def level(self, now: float) -> CarbonLevel:
        """The level of the signal now (MODERATE when flat or unavailable)."""
        return self.outlook.level(now)

    # -- hold ----------------------------------------------------------------------------
    def hold(self, task: str, spec: Mapping[str, Any], *, now: float, submitted_at: float,
             deadline: float | None, expected_s: float | None, expected_j: float | None,
             execution: str | None = None, sim_running: bool = True) -> float | None:
        """None: the execution may start now; else the unix time before which it should not.

        Deferrable tasks (``spec["energy"]["deferrable"]``) with a finite bound (deadline,
        ``max_delay``, or the allocation end) start when the capacity-aware plan
        (odop.energy.deferral) says; otherwise a task waits while its carbon/price
        threshold (its own, or its priority's), compared with the signal averaged over
        its expected run, is not met, re-checked at the next forecast slot. Never past
        min(deadline, submitted_at + max_delay + expected_s, alloc_end) - expected_s.
        Once the simulation has ended (``sim_running`` False) nothing is held unless
        ``hold_after_sim`` is set: waiting would keep the whole allocation powered.
        Pass ``execution``: it keys the plan and the answers kept per forecast slot.
        """
        seen = self._answers.get(execution) if execution is not None else None
        if seen is not None and sim_running and seen[0] is self.outlook.read(now) \
                and (seen[1] is None or seen[1] > now):
            return seen[1]  # a threshold answer, same forecast slot: the same answer
        bound = self._bound(spec, now=now, submitted_at=submitted_at, deadline=deadline,
                            expected_s=expected_s, sim_running=sim_running)
        if bound is None:
            return None
        view, duration, end_by = bound
        key = execution or (task, submitted_at, deadline, expected_s)
        if self._deferrable(spec, duration, end_by):
            self._enlist(key, spec, now, duration, end_by, expected_j)
            return self._clamp(self.planned(key, now), now, end_by - duration)
        until = None if self._allowed(spec, view, now, duration) else view.slot_end
        until = self._clamp(until, now, end_by - duration)
        if execution is not None:
            if len(self._answers) >= MAX_ANSWERS:
                self._answers = {k: v for k, v in self._answers.items() if v[0] is view}
            self._answers[execution] = (view, until)
        return until

    @staticmethod
    def _clamp(until: float | None, now: float, latest: float) -> float | None:
        """``until``, never past the latest start; None when that is now or past."""
        if until is None:
            return None
        until = min(until, latest)
        return until if until > now else None

    def enlist(self, task: str, spec: Mapping[str, Any], *, now: float, submitted_at: float,
               deadline: float | None, expected_s: float | None, expected_j: float | None,
               execution: str, sim_running: bool = True) -> None:
        """Tell the planner of a waiting deferrable execution without planning yet (the
        scheduler enlists a cycle's arrivals first, so that they share one re-plan)."""
        if execution in self.planner.jobs or not (spec.get("energy") or {}).get("deferrable"):
            return
        bound = self._bound(spec, now=now, submitted_at=submitted_at, deadline=deadline,
                            expected_s=expected_s, sim_running=sim_running)
        if bound is not None and self._deferrable(spec, bound[1], bound[2]):
            self._enlist(execution, spec, now, bound[1], bound[2], expected_j)

    def _bound(self, spec: Mapping[str, Any], *, now: float, submitted_at: float,
               deadline: float | None, expected_s: float | None, sim_running: bool
               ) -> tuple[View, float, float] | None:
        """(view, expected duration s, end bound unix s), or None: nothing to hold."""
        if not sim_running and not self.settings.hold_after_sim:
            return None
        view = self.outlook.read(now)
        if view is None:
            return None
        duration = float(expected_s or spec.get("time_s") or 0.0)
        end_by = self._end_by(spec.get("energy") or {}, submitted_at, deadline, duration)
        return None if now >= end_by - duration else (view, duration, end_by)

    @staticmethod
    def _deferrable(spec: Mapping[str, Any], duration: float, end_by: float) -> bool:
        return bool((spec.get("energy") or {}).get("deferrable")) and math.isfinite(end_by) \
            and duration > 0

    def _enlist(self, key: Any, spec: Mapping[str, Any], now: float, duration: float,
                end_by: float, energy_j: float | None) -> None:
        if key in self.planner.jobs:
            return
        cores = float(spec.get("cpus_min") or 1.0)
        joules = energy_j or self.settings.watts_per_core * cores * duration
        self.planner.add(key, cores=cores, duration_s=duration, energy_j=joules, earliest=now,
                         end_by=end_by)

    def planned(self, key: Any, now: float) -> float | None:
        """When a waiting deferrable execution should start (unix s; ``now`` when its
        plan has no room before its latest start); None if the planner does not know it.
        Re-plans first if anything changed since the last plan."""
        view = self.outlook.read(now)
        if view is None or key not in self.planner.jobs:
            return None
        if (view.gen, view.forecast.end) != self._planned_on:
            self._planned_on = (view.gen, view.forecast.end)
            self.planner.set_forecast(view.forecast)
        self.planner.set_capacity(self._slot_capacity(view))
        start = self.planner.start_of(key, now)
        return now if start is None or not self.planner.fits[key] else start

    def _slot_capacity(self, view: View) -> np.ndarray | float:
        """Cores odop expects per forecast slot: the cores it could hold (as last told by
        ``concurrency``), scaled by each slot's level like the core limit; no limit
        before the first cycle has said."""
        if self._cores is None:
            return math.inf
        if view.classifier is None:
            return float(self._cores)
        key = (view.gen, view.forecast.end, self._cores)
        if self._capacity_key != key:
            levels = np.searchsorted(view.classifier.cuts, view.forecast.values(self.kind))
            per_level = np.array([self.scaler.limit(self._cores, CarbonLevel(i))
                                  for i in range(len(CarbonLevel))], dtype=float)
            self._capacity_key, self._capacity = key, per_level[levels]
        return self._capacity

    def started(self, execution: str, cores: int, expected_s: float, now: float) -> None:
        """An execution (any task) took ``cores`` at ``now`` for about ``expected_s``."""
        self.planner.start(execution, now, float(cores), expected_s)

    def finished(self, execution: str, now: float) -> None:
        """An execution gave its cores back (ended, paused or moved)."""
        self.planner.finish(execution, now)

    def explain(self, key: Any, now: float, until: float | None) -> str | None:
        """Why a waiting deferrable execution was given ``until`` (None: start now), in
        words with the signal averaged over its expected run; None for other tasks."""
        job, view = self.planner.jobs.get(key), self.outlook.read(now)
        if job is None or view is None:
            return None
        fc, d, unit = view.forecast, job.duration_s, "g/kWh" if self.kind == "carbon" else "/MWh"
        here = fc.mean_over(now, now + d, self.kind)
        bound = f"it must end by {_clock(job.end_by)}"
        if until is not None:
            there = fc.mean_over(until, until + d, self.kind)
            return (f"energy: deferred to {_clock(until)}: {there:.0f} {unit} there against "
                    f"{here:.0f} {unit} now, averaged over its {d:.0f} s run; {bound}")
        if not self.planner.fits.get(key, True):
            return f"energy: starts at once: no room in the plan before its latest start; {bound}"
        return (f"energy: starts at once: no cleaner window with room before its latest start "
                f"({here:.0f} {unit} now, averaged over its {d:.0f} s run); {bound}")

    @property
    def replans(self) -> int:
        """Deferral plans made so far: a change tells held executions to look again."""
        return self.planner.replans

    def _end_by(self, energy: Mapping[str, Any], submitted_at: float, deadline: float | None,
                duration: float) -> float:
        end_by = math.inf if deadline is None else float(deadline)
        if self.alloc_end is not None:
            end_by = min(end_by, float(self.alloc_end))
        if energy.get("max_delay") is not None:
            end_by = min(end_by, submitted_at + float(energy["max_delay"]) + duration)
        return end_by

    def forget(self, execution: str) -> None:
        """Drop an execution from the plan and the answers (placed, cancelled)."""
        self.planner.remove(execution)
        self._answers.pop(execution, None)

    def _allowed(self, spec: Mapping[str, Any], view: View, now: float,
                 duration: float) -> bool:
        """Whether the signal averaged over the expected run meets the task's threshold."""
        energy = spec.get("energy") or {}
        carbon_cap, price_cap = energy.get("carbon_threshold"), energy.get("price_threshold")
        end = now + max(duration, 1.0)
        fc = view.forecast
        if price_cap is not None and fc.has("price") \
                and self._mean(view, now, end, "price") > price_cap:
            return False
        carbon = self._mean(view, now, end, "carbon") if fc.has("carbon") else None
        if isinstance(carbon_cap, (int, float)):
            return carbon is None or carbon <= carbon_cap
        level = view.level if view.classifier is None else view.classifier.level(
            self._mean(view, now, end, self.kind))
        if isinstance(carbon_cap, str):
            return level <= parse_level(carbon_cap, "energy.carbon_threshold")
        return self.thresholds.allows(int(spec.get("priority", 0)), level)

    def _mean(self, view: View, t0: float, t1: float, kind: str) -> float:
        """Mean of the view's ``kind`` signal over [t0, t1] (cumulative sums kept per view)."""
        if self._cum[0] is not view:
            self._cum = (view, {})
        cum = self._cum[1].get(kind)
        if cum is None:
            cum = self._cum[1][kind] = cumulative(view.forecast, kind)
        ends = integral_to(view.forecast, np.array([t0, t1]), cum, kind)
        return float(ends[1] - ends[0]) / (t1 - t0)

    # -- concurrency ----------------------------------------------------------------------
    def concurrency(self, capacity: int, *, now: float, sim_running: bool = True) -> int:
        """Cores odop may hold at once, of the ``capacity`` it could: floor(capacity x the
        factor of the level now), >= ``min_slots``; all of them once the simulation has
        ended (unless ``hold_after_sim``), as nothing is held then either. ``capacity``
        is also what deferral plans into (re-planned when it moves by 10 % or more; none,
        as before the first node reports, tells nothing about later slots)."""
        if not sim_running and not self.settings.hold_after_sim:
            return capacity
        if capacity > 0 and (self._cores is None
                             or abs(capacity - self._cores) >= max(1.0, 0.1 * self._cores)):
            self._cores = capacity  # what the plan expects; a change under 10 % keeps it
        return self.scaler.limit(capacity, self.level(now))

    def power_cap(self, node: str, watts: float | None, running: Iterable[Any], *,
                  now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(ids to pause, ids to resume) on ``node`` at ``watts`` (W): see NodeCaps."""
        return self.caps.decide(node, watts, running, now=now)

    # -- accounting, status ----------------------------------------------------------------
    def footprint(self, energy_j: float, start: float, end: float) -> dict[str, Any]:
        """Grams of CO2 of ``energy_j`` joules used over [start, end] (unix s)."""
        fc = None
        try:
            fc = self.provider.forecast(start, max(end - start, 1.0))
        except (EnergyError, ValueError):
            fc = None
        if fc is None or not fc.has("carbon"):
            fc = self.static.forecast(start, max(end - start, 1.0))
        intensity = fc.mean_over(start, end, "carbon")
        return {"energy_j": float(energy_j), "gco2": float(energy_j) / J_PER_KWH * intensity,
                "signal_source": fc.source, "intensity_g_per_kwh": intensity}

    def status(self, now: float) -> dict[str, Any]:
        """The signal now, its level, the forecast's age and health (plain data)."""
        view = self.outlook.read(now)
        health = self.provider.status()
        point = view.forecast.point(now) if view is not None else None
        reason = self.outlook.error or health.last_error or (
            f"serving {health.serving}" if health.degraded else None)
        age = health.age_s if health.age_s is not None else (
            None if view is None else now - view.forecast.issued_at)
        return {
            "provider": self.settings.provider, "source": health.source,
            "serving": health.serving, "kind": self.kind,
            "carbon_g_per_kwh": None if point is None else point.carbon,
            "price_per_mwh": None if point is None else point.price,
            "currency": None if view is None else view.forecast.currency,
            "level": self.level(now).name.lower(),
            "flat": view is not None and view.classifier is None,
            "forecast_age_s": age,
            "forecast_end": None if view is None else view.forecast.end,
            "degraded": bool(health.degraded or self.outlook.error), "reason": reason,
            "alloc_end": self.alloc_end, "plans": len(self.planner.jobs),
            "replans": self.planner.replans,
            "capped": {n: sorted(ids) for n, ids in self.caps.capped.items() if ids},
        }


def _clock(t: float) -> str:
    """Unix time ``t`` as UTC hours, minutes and seconds with the date."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
