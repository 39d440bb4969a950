"""Executions the energy policy asks to wait, kept out of the decision queue until due.

A deferrable task with a deadline waits for the start the capacity-aware plan gives it,
and any task may wait while the carbon level is above its priority's threshold; the
policy (odop.energy.advisor) says until when. Held executions return to the queue
when that time comes, when a re-plan moves their start to now, and all of them when the
simulation ends (unless the policy says otherwise). An execution expected to outlast
the allocation is never started: it stays queued, for ``odop export`` to hand to a
later job. The policy is told which executions hold cores (started, ended), so that
the plan counts them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from odop.scheduler.core import Decider
from odop.scheduler.selection import Pending

UNKNOWN_RUN_S = 600.0
"""Expected run (s) of an execution with no history and no declared time, for planning."""


class Holds:
    """Pending executions parked by the energy policy: execution -> (pending, until)."""

    def __init__(self, policy: Any, decider: Decider, alloc_end: float | None = None) -> None:
        self.policy, self.decider, self.alloc_end = policy, decider, alloc_end
        self.held: dict[str, tuple[Pending, float]] = {}
        self._running: dict[str, float] = {}
        """Executions holding cores as last told to the policy -> expected run (s)."""
        self._expected: dict[str, float] = {}
        self._replans = -1
        self.note: Callable[[str, str], None] | None = None
        """Where a deferral decision is recorded with its reason: (execution, text)."""
        self._noted: set[str] = set()

    def apply(self, now: float, has_free_cores: bool) -> None:
        """Release what is due; park what the policy holds (asked only when cores are free,
        since a placement is then possible)."""
        for execution, (p, until) in list(self.held.items()):
            if until <= now:
                del self.held[execution]
                self.decider.enqueue(p)
        if not has_free_cores:
            return
        self._sync_running(now)
        waiting = self._waiting(now)
        for p in waiting:  # a cycle's arrivals first, so that they share one re-plan
            self._ask(self.policy.enlist, p, now)
        for p in waiting:
            until = self._ask(self.policy.hold, p, now)
            held = until is not None and until > now
            if held:
                del self.decider.pending[p.execution]
                self.held[p.execution] = (p, until)
            self._record(p.execution, now, until if held else None)
        self._follow_plan(now)

    def _record(self, execution: str, now: float, until: float | None) -> None:
        """Note an execution's first deferral decision with its reason."""
        if self.note is None or execution in self._noted:
            return
        why = self.policy.explain(execution, now, until)
        if why is not None:
            self._noted.add(execution)
            self.note(execution, why)

    def _waiting(self, now: float) -> list[Pending]:
        """Queued executions the policy may hold; those that would outlast the allocation
        are parked for good."""
        out = []
        for p in list(self.decider.pending.values()):
            spec = self.decider.specs.get(p.task)
            if spec is None or p.not_before > now:
                continue
            if self._outlasts_allocation(p, now):
                del self.decider.pending[p.execution]
                self.held[p.execution] = (p, math.inf)
                continue
            self._expected[p.execution] = p.expected_s or spec.get("time_s") or UNKNOWN_RUN_S
            out.append(p)
        return out

    def _ask(self, call: Any, p: Pending, now: float) -> Any:
        return call(p.task, self.decider.specs[p.task], now=now, submitted_at=p.submitted_at,
                    deadline=p.deadline, expected_s=p.expected_s, expected_j=None,
                    execution=p.execution, sim_running=self.decider.sim_running)

    def _sync_running(self, now: float) -> None:
        """Tell the policy which executions took cores and which gave them back."""
        active = self.decider.active
        if active.keys() == self._running.keys():
            return
        for execution in self._running.keys() - active.keys():
            del self._running[execution]
            self._noted.discard(execution)
            self.policy.finished(execution, now)
        for execution in active.keys() - self._running.keys():
            task, _, cores = active[execution]
            expected = self._expected.pop(execution, None) or \
                self.decider.specs.get(task, {}).get("time_s") or UNKNOWN_RUN_S
            self._running[execution] = expected
            self.policy.started(execution, len(cores), expected, now)

    def _follow_plan(self, now: float) -> None:
        """After a re-plan, held deferrable executions take their new start."""
        if self.policy.replans == self._replans:
            return
        self._replans = self.policy.replans
        for execution, (p, until) in list(self.held.items()):
            start = self.policy.planned(execution, now) if until != math.inf else None
            if start is None:
                continue
            if start <= now:
                del self.held[execution]
                self.decider.enqueue(p)
            else:
                self.held[execution] = (p, start)

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
        self._noted.discard(execution)
        self._expected.pop(execution, None)
        return self.held.pop(execution, None) is not None
