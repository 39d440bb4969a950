"""Node power cap: which running tasks to pause first, and when to resume them.

Above ``cap_w`` (W) the controller pauses stoppable tasks, lowest priority first and,
within a priority, the most recently started first, skipping tasks that have run less
than ``min_runtime_s``, until the expected watts shed cover the excess (a task with
unknown watts counts as covering it: one per decision). Paused tasks resume,
highest priority first, only once node power falls below ``resume_w`` < ``cap_w``
(hysteresis) and only while the expected total stays under ``resume_w``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from odop.energy.errors import EnergyConfigError


@dataclass(frozen=True)
class CapTask:
    """A task as the controller sees it; ``watts`` is its expected draw (None: unknown)."""

    id: str
    priority: int
    stoppable: bool
    started_at: float
    paused: bool = False
    watts: float | None = None


@dataclass(frozen=True)
class CapDecision:
    """Task ids to pause (or stop, if the engine cannot pause them) and to resume."""

    pause: tuple[str, ...] = ()
    resume: tuple[str, ...] = ()


class PowerCapController:
    """Pure decision class: ``decide(node_watts, tasks, now) -> CapDecision``."""

    def __init__(self, cap_w: float, resume_w: float | None = None,
                 min_runtime_s: float = 30.0) -> None:
        resume_w = 0.9 * cap_w if resume_w is None else resume_w
        if not 0 < resume_w < cap_w:
            raise EnergyConfigError(
                f"power cap: resume_w = {resume_w} W must be > 0 and below cap_w = {cap_w} W")
        self.cap_w, self.resume_w, self.min_runtime_s = cap_w, resume_w, min_runtime_s

    def decide(self, node_watts: float, tasks: Sequence[CapTask], now: float) -> CapDecision:
        """What to do at ``now`` given the node's measured power (W)."""
        if node_watts > self.cap_w:
            return CapDecision(pause=self._to_pause(node_watts - self.cap_w, tasks, now))
        if node_watts < self.resume_w:
            return CapDecision(resume=self._to_resume(self.resume_w - node_watts, tasks))
        return CapDecision()

    def _to_pause(self, excess_w: float, tasks: Sequence[CapTask], now: float
                  ) -> tuple[str, ...]:
        pool = [t for t in tasks if t.stoppable and not t.paused
                and now - t.started_at >= self.min_runtime_s]
        pool.sort(key=lambda t: (t.priority, -t.started_at))
        chosen: list[str] = []
        for task in pool:
            chosen.append(task.id)
            if task.watts is None:
                break
            excess_w -= task.watts
            if excess_w <= 0:
                break
        return tuple(chosen)

    def _to_resume(self, headroom_w: float, tasks: Sequence[CapTask]) -> tuple[str, ...]:
        paused = sorted((t for t in tasks if t.paused), key=lambda t: (-t.priority, t.started_at))
        chosen: list[str] = []
        for task in paused:
            if task.watts is None:
                return tuple(chosen) if chosen else (task.id,)
            if task.watts > headroom_w:
                break
            headroom_w -= task.watts
            chosen.append(task.id)
        return tuple(chosen)


class NodeCaps:
    """Each node's power cap: which executions to pause and resume as its power moves."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._caps: dict[float, PowerCapController] = {}
        self.capped: dict[str, set[str]] = {}
        """node -> executions this cap paused."""
        self._last_cap: dict[str, float] = {}

    def decide(self, node: str, watts: float | None, running: Iterable[Any], *,
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
        capped = self.capped.setdefault(node, set())
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


def _cap_task(t: Any) -> CapTask:
    """A CapTask from a CapTask-like object or a mapping."""
    if isinstance(t, CapTask):
        return t
    get = t.get if isinstance(t, Mapping) else (lambda k, d=None: getattr(t, k, d))
    return CapTask(str(get("id")), int(get("priority", 0) or 0), bool(get("stoppable", True)),
                   float(get("started_at", 0.0) or 0.0), bool(get("paused", False)),
                   get("watts"))
