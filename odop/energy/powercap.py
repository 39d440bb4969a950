"""Node power cap: which running tasks to pause first, and when to resume them.

Above ``cap_w`` (W) the controller pauses stoppable tasks, lowest priority first and,
within a priority, the most recently started first, skipping tasks that have run less
than ``min_runtime_s``, until the expected watts shed cover the excess (a task with
unknown watts counts as covering it: one per decision). Paused tasks resume,
highest priority first, only once node power falls below ``resume_w`` < ``cap_w``
(hysteresis) and only while the expected total stays under ``resume_w``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
