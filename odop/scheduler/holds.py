"""Executions the energy policy asks to wait, kept out of the decision queue until due.

A deferrable task with a deadline may wait for a cleaner or cheaper window, and any task
may wait while the carbon level is above its priority's threshold; the policy
(odop.scheduler.energy) says until when. Held executions return to the queue when that
time comes, and all of them when the simulation ends (unless the policy says otherwise).
An execution expected to outlast the allocation is never started: it stays queued, for
``odop export`` to hand to a later job.
"""

from __future__ import annotations

import math
from typing import Any

from odop.scheduler.core import Decider
from odop.scheduler.selection import Pending


class Holds:
    """Pending executions parked by the energy policy: execution -> (pending, until)."""

    def __init__(self, policy: Any, decider: Decider, alloc_end: float | None = None) -> None:
        self.policy, self.decider, self.alloc_end = policy, decider, alloc_end
        self.held: dict[str, tuple[Pending, float]] = {}

    def apply(self, now: float, has_free_cores: bool) -> None:
        """Release what is due; park what the policy holds (asked only when cores are free,
        since a placement is then possible)."""
        for execution, (p, until) in list(self.held.items()):
            if until <= now:
                del self.held[execution]
                self.decider.enqueue(p)
        if not has_free_cores:
            return
        sim = self.decider.sim_running
        for p in list(self.decider.pending.values()):
            spec = self.decider.specs.get(p.task)
            if spec is None or p.not_before > now:
                continue
            if self._outlasts_allocation(p, now):
                del self.decider.pending[p.execution]
                self.held[p.execution] = (p, math.inf)
                continue
            until = self.policy.hold(p.task, spec, now=now, submitted_at=p.submitted_at,
                                     deadline=p.deadline, expected_s=p.expected_s,
                                     expected_j=None, execution=p.execution, sim_running=sim)
            if until is not None and until > now:
                del self.decider.pending[p.execution]
                self.held[p.execution] = (p, until)

    def _outlasts_allocation(self, p: Pending, now: float) -> bool:
        expected = p.expected_s or self.decider.specs[p.task].get("time_s")
        return bool(self.alloc_end and expected and now + expected > self.alloc_end)

    def next_due(self) -> float | None:
        return min((until for _, until in self.held.values()), default=None)

    def waiting(self) -> bool:
        """True while some held execution will still be released (drain waits for it)."""
        return any(until != math.inf for _, until in self.held.values())

    def drop(self, execution: str) -> bool:
        """Forget a held execution (cancelled); True if it was held."""
        self.policy.forget(execution)
        return self.held.pop(execution, None) is not None
