"""The scheduler's energy policy: when a task may start, how many at once, node power caps.

One ``EnergyPolicy`` per scheduler, built from the ``[energy]`` config section
(odop.energy.settings). It reads the grid signal through a provider whose network
fetches run on a background thread (``start``/``stop``), so no call here waits on the
network. Every call is cheap: the forecast is re-read at most every ``check_s`` seconds
or at a slot boundary, levels are computed once per read, and each execution's deferral
plan is re-made only when the forecast changed. Any signal problem makes the policy
answer as a plain scheduler would (start now, base concurrency) and shows in ``status``.

Units: unix seconds, seconds, joules, watts, gCO2/kWh, currency/MWh, cores.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from odop.energy.errors import EnergyError
from odop.energy.forecast import Forecast
from odop.energy.planner import J_PER_KWH, DeferralPlan
from odop.energy.policy import (
    DEFAULT_SCALING,
    CarbonLevel,
    ConcurrencyScaler,
    LevelClassifier,
    PriorityThresholds,
)
from odop.energy.powercap import CapTask, PowerCapController
from odop.energy.settings import EnergySettings, make_provider, parse_level, parse_settings
from odop.energy.signals import SignalProvider, StaticSignal

log = logging.getLogger("odop.scheduler.energy")
MAX_PLANS = 20000
"""Cached deferral plans kept before those past their bound are dropped."""
RETRY_S = 1.0
"""Hold (s) of a deferrable execution not yet planned because the cycle's budget is spent."""


@dataclass(frozen=True)
class _View:
    """The forecast as of one slot: its levels and the signal in force over the slot."""

    forecast: Forecast
    gen: int
    slot_start: float
    slot_end: float
    classifier: LevelClassifier | None  # None: a flat signal (no levels to tell apart)
    level: CarbonLevel
    carbon: float | None
    price: float | None


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
        self._view: _View | None = None
        self._checked_at = -math.inf
        self._gen = 0
        self._key: tuple | None = None
        self._error: str | None = None
        self._plans: dict[Any, tuple[DeferralPlan, int, float]] = {}
        self._answers: dict[Any, tuple[_View, float | None]] = {}
        self._budget_now, self._budget_left, self._stale = math.nan, 0, False
        self._caps: dict[float, PowerCapController] = {}
        self._capped: dict[str, set[str]] = {}
        self._last_cap: dict[str, float] = {}

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

    # -- the signal, read at most every check_s ------------------------------------------
    def _read(self, now: float) -> _View | None:
        view = self._view
        if view is not None and now - self._checked_at < self.settings.check_s \
                and view.slot_start <= now < view.slot_end:
            return view
        self._checked_at = now
        try:
            fc = self.provider.forecast(now, self.settings.horizon_s)
            if not fc.has(self.kind):
                raise EnergyError(f"{fc.source} has no {self.kind} values")
            self._view, self._error = self._make_view(fc, now, view), None
        except (EnergyError, ValueError, ArithmeticError) as exc:
            if self._error != str(exc):
                log.warning("energy signal unusable, scheduling as without one: %s", exc)
            self._error, self._view = str(exc), None
        return self._view

    def _make_view(self, fc: Forecast, now: float, old: _View | None) -> _View:
        """A new view when the forecast or the slot changed, else the old one."""
        values = fc.values(self.kind)
        key = (fc.source, float(fc.start[0]), fc.resolution_s, values.size, values.tobytes())
        idx = int(np.clip((now - fc.start[0]) // fc.resolution_s, 0, values.size - 1))
        slot_start = float(fc.start[0] + idx * fc.resolution_s)
        slot_end = slot_start + fc.resolution_s
        if slot_end <= now:  # past the last slot: the value is held
            slot_start, slot_end = now, now + self.settings.check_s
        if key == self._key and old is not None and old.slot_start <= now < old.slot_end:
            return old
        if key != self._key:
            self._key = key
            if old is None or not _extends(old.forecast, fc, self.kind):
                self._gen += 1  # plans re-made; a forecast that only moved on keeps them
        flat = float(np.ptp(values)) <= 1e-9 * max(1.0, float(np.abs(values).max()))
        classifier = None if flat else LevelClassifier.from_forecast(
            fc, self.kind, self.settings.level_quantiles)
        level = CarbonLevel.MODERATE if classifier is None else classifier.level(values[idx])
        point = fc.point(slot_start)
        return _View(fc, self._gen, min(slot_start, now), slot_end,
                     classifier, level, point.carbon, point.price)

    def level(self, now: float) -> CarbonLevel:
        """The level of the signal now (MODERATE when flat or unavailable)."""
        view = self._read(now)
        return CarbonLevel.MODERATE if view is None else view.level

    # -- hold ----------------------------------------------------------------------------
    def hold(self, task: str, spec: Mapping[str, Any], *, now: float, submitted_at: float,
             deadline: float | None, expected_s: float | None, expected_j: float | None,
             execution: str | None = None, sim_running: bool = True) -> float | None:
        """None: the execution may start now; else the unix time before which it should not.

        Deferrable tasks (``spec["energy"]["deferrable"]``) with a finite bound (deadline,
        ``max_delay``, or the allocation end) wait for the cleanest window before it;
        otherwise a task waits while its carbon/price threshold (its own, or its
        priority's) is not met, re-checked at the next forecast slot. Never past
        min(deadline, submitted_at + max_delay + expected_s, alloc_end) - expected_s.
        Once the simulation has ended (``sim_running`` False) nothing is held unless
        ``hold_after_sim`` is set: waiting would keep the whole allocation powered.
        Pass ``execution``: it keys the caches that make a repeated call a dict lookup
        (answers are kept per forecast slot, plans re-made only when the forecast changes).
        """
        if not sim_running and not self.settings.hold_after_sim:
            return None
        view = self._read(now)
        if view is None:
            return None
        seen = self._answers.get(execution) if execution is not None else None
        if seen is not None and seen[0] is view and (seen[1] is None or seen[1] > now):
            return seen[1]  # same slot, same forecast: the same answer (None stays None)
        key = execution or (task, submitted_at, deadline, expected_s)
        self._stale = False
        until = self._decide(key, spec, view, now, submitted_at, deadline, expected_s,
                             expected_j)
        if execution is not None and not self._stale:
            if len(self._answers) >= MAX_PLANS:
                self._prune(now)
            self._answers[execution] = (view, until)
        return until

    def _decide(self, key: Any, spec: Mapping[str, Any], view: _View, now: float,
                submitted_at: float, deadline: float | None, expected_s: float | None,
                expected_j: float | None) -> float | None:
        energy = spec.get("energy") or {}
        duration = float(expected_s or spec.get("time_s") or 0.0)
        end_by = self._end_by(energy, submitted_at, deadline, duration)
        latest = end_by - duration
        if now >= latest:
            return None
        until = None
        if energy.get("deferrable") and math.isfinite(end_by) and duration > 0:
            until = self._deferred(key, view, now, duration, expected_j, spec, end_by)
        if until is None and not self._allowed(spec, view):
            until = view.slot_end
        if until is None:
            return None
        until = min(until, latest)
        return until if until > now else None

    def _end_by(self, energy: Mapping[str, Any], submitted_at: float, deadline: float | None,
                duration: float) -> float:
        end_by = math.inf if deadline is None else float(deadline)
        if self.alloc_end is not None:
            end_by = min(end_by, float(self.alloc_end))
        if energy.get("max_delay") is not None:
            end_by = min(end_by, submitted_at + float(energy["max_delay"]) + duration)
        return end_by

    def _deferred(self, key: Any, view: _View, now: float, duration: float,
                  energy_j: float | None, spec: Mapping[str, Any], end_by: float
                  ) -> float | None:
        entry = self._plans.get(key)
        if entry is None:
            if len(self._plans) >= MAX_PLANS:
                self._prune(now)
            cores = float(spec.get("cpus_min") or 1.0)
            joules = energy_j or self.settings.watts_per_core * cores * duration
            plan = DeferralPlan(duration, joules, end_by, math.inf, self.kind, earliest=now)
            entry = (plan, -1, -math.inf)
        plan, gen, known_until = entry
        if gen != view.gen or known_until < min(plan.deadline, view.forecast.end):
            if self._may_plan(now):
                plan.update(view.forecast, now)
                self._plans[key] = (plan, view.gen, view.forecast.end)
            else:  # over this cycle's budget: the previous forecast's plan, or ask again
                self._stale = True
                if plan.decision is None:
                    return now + RETRY_S
        decision = plan.decision
        if decision is None or not decision.fits or plan.due(now):
            return None
        return decision.start

    def _may_plan(self, now: float) -> bool:
        """Spend one of this cycle's plans (a cycle: the calls that share one ``now``)."""
        if now != self._budget_now:
            self._budget_now, self._budget_left = now, self.settings.plans_per_cycle
        self._budget_left -= 1
        return self._budget_left >= 0

    def _prune(self, now: float) -> None:
        """Drop plans past their bound and answers of old views; then the oldest entries."""
        self._plans = {k: v for k, v in self._plans.items() if v[0].deadline > now}
        self._answers = {k: v for k, v in self._answers.items() if v[0] is self._view}
        for cache in (self._plans, self._answers):
            while len(cache) >= MAX_PLANS:
                cache.pop(next(iter(cache)))

    def forget(self, execution: str) -> None:
        """Drop an execution's cached plan and answer (placed, cancelled); optional, as
        the caches are bounded."""
        self._plans.pop(execution, None)
        self._answers.pop(execution, None)

    def _allowed(self, spec: Mapping[str, Any], view: _View) -> bool:
        energy = spec.get("energy") or {}
        carbon_cap, price_cap = energy.get("carbon_threshold"), energy.get("price_threshold")
        if price_cap is not None and view.price is not None and view.price > price_cap:
            return False
        if isinstance(carbon_cap, (int, float)):
            return view.carbon is None or view.carbon <= carbon_cap
        if isinstance(carbon_cap, str):
            return view.level <= parse_level(carbon_cap, "energy.carbon_threshold")
        return self.thresholds.allows(int(spec.get("priority", 0)), view.level)

    # -- concurrency ----------------------------------------------------------------------
    def concurrency(self, capacity: int, *, now: float, sim_running: bool = True) -> int:
        """Cores odop may hold at once, of the ``capacity`` it could: floor(capacity x the
        factor of the level now), >= ``min_slots``; all of them once the simulation has
        ended (unless ``hold_after_sim``), as nothing is held then either."""
        if not sim_running and not self.settings.hold_after_sim:
            return capacity
        return self.scaler.limit(capacity, self.level(now))

    # -- power cap -------------------------------------------------------------------------
    def power_cap(self, node: str, watts: float | None, running: Iterable[Any], *,
                  now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(ids to pause, ids to resume) on ``node`` measured at ``watts`` (W).

        ``running`` holds the node's running and paused executions as CapTask-like
        objects or mappings (id, priority, stoppable, started_at, paused, watts). Only
        executions this cap paused are ever resumed; after an action the node is left
        alone for ``cap_settle_s`` so that the next reading reflects it.
        """
        cap = self.settings.cap_for(node)
        if cap is None or watts is None:
            return (), ()
        if now - self._last_cap.get(node, -math.inf) < self.settings.cap_settle_s:
            return (), ()
        capped = self._capped.setdefault(node, set())
        tasks = [_cap_task(t) for t in running]
        capped.intersection_update(t.id for t in tasks)
        view = [CapTask(t.id, t.priority, t.stoppable, t.started_at, True, t.watts)
                if t.id in capped else t for t in tasks if t.id in capped or not t.paused]
        decision = self._controller(cap).decide(float(watts), view, now)
        capped.update(decision.pause)
        capped.difference_update(decision.resume)
        if decision.pause or decision.resume:
            self._last_cap[node] = now
        return decision.pause, decision.resume

    def _controller(self, cap: float) -> PowerCapController:
        ctrl = self._caps.get(cap)
        if ctrl is None:
            ctrl = self._caps[cap] = PowerCapController(cap, self.settings.resume_w,
                                                        self.settings.min_runtime_s)
        return ctrl

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
        view = self._read(now)
        health = self.provider.status()
        point = view.forecast.point(now) if view is not None else None
        reason = self._error or health.last_error or (
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
            "degraded": bool(health.degraded or self._error), "reason": reason,
            "alloc_end": self.alloc_end, "plans": len(self._plans),
            "capped": {n: sorted(ids) for n, ids in self._capped.items() if ids},
        }


def _extends(old: Forecast, new: Forecast, kind: str) -> bool:
    """Whether ``new`` is ``old`` moved on in time: same source and slot grid, a later or
    equal first slot, and the same values wherever both have slots."""
    res = old.resolution_s
    if new.source != old.source or new.resolution_s != res or new.start[0] < old.start[0]:
        return False
    shift = (new.start[0] - old.start[0]) / res
    if abs(shift - round(shift)) > 1e-9:
        return False
    k = int(round(shift))
    a, b = old.values(kind)[k:], new.values(kind)
    n = min(a.size, b.size)
    return bool(np.array_equal(a[:n], b[:n]))


def _cap_task(t: Any) -> CapTask:
    """A CapTask from a CapTask-like object or a mapping."""
    if isinstance(t, CapTask):
        return t
    get = t.get if isinstance(t, Mapping) else (lambda k, d=None: getattr(t, k, d))
    return CapTask(str(get("id")), int(get("priority", 0) or 0), bool(get("stoppable", True)),
                   float(get("started_at", 0.0) or 0.0), bool(get("paused", False)),
                   get("watts"))
