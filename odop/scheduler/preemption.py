"""Giving cores back to the simulation: phase lending, and pause / re-pin / requeue.

While a bound rank is inside an idle phase (``odop.phase("io")``) its cores are lent to
tasks. When the phase ends, or an unbound simulation's CPU use grows past the cores left
to it, the tasks on the cores it needs are preempted at once, each by its own policy:
``pause`` (SIGSTOP; resumed, re-pinned, when cores free up), ``repin`` (moved to a core
still idle, else paused) or ``requeue`` (stopped with TERM and a grace period — a resumable
task checkpoints then — and queued again; not a failure).
"""

from __future__ import annotations

from collections.abc import Iterable

from odop.phasegate import PhaseTimes
from odop.scheduler.cluster import Node, unbound_cores
from odop.scheduler.core import Decider
from odop.scheduler.lifecycle import Lifecycle

HURT_WAIT = 0.02
"""Run delay per rank (fraction of the sample's wall time) past which unbound ranks count
as hurt: the simulation's slowdown budget."""


class PhaseBook:
    """Which ranks are in an idle phase now, and the cores they lend (per node).

    A phase lends its rank's cores only if it is expected to last at least ``min_lend_s``:
    each (node, rank, phase) remembers how long it lasted (smoothed), so a rank that waits
    20 ms per step is not churned through pause and resume. A phase never seen before
    does not lend: its first instance teaches how long it lasts.
    """

    def __init__(self, idle_phases: Iterable[str], min_lend_s: float = 1.0) -> None:
        self.idle_phases = frozenset(idle_phases)
        self.min_lend_s = min_lend_s
        self.lending: dict[tuple[str, int], frozenset[int]] = {}
        self.times = PhaseTimes()
        """How long each (node, rank, phase) lasts."""

    def mark(self, node: str, rank: int, phase: str, active: bool, cores: Iterable[int],
             now: float) -> frozenset[int]:
        """Record a mark; returns the cores taken back (a lending phase just ended)."""
        if phase not in self.idle_phases:
            return frozenset()
        key, long = (node, rank), (node, rank, phase)
        if active:
            self.times.begin(long, now)
            if self.times.typical_s.get(long, 0.0) >= self.min_lend_s:
                self.lending[key] = frozenset(cores)
            return frozenset()
        self.times.end(long, now)
        return self.lending.pop(key, frozenset())

    def lent(self, node: str) -> frozenset[int]:
        return frozenset().union(*(c for (n, _), c in self.lending.items() if n == node))


class Preemption:
    """Which executions give cores back, and how (each by its task's policy); the
    execution's life changes through the lifecycle it is given."""

    def __init__(self, decider: Decider, lifecycle: Lifecycle) -> None:
        self.decider, self.lifecycle = decider, lifecycle
        self.capped: set[str] = set()
        """Paused executions held by the power cap: resumed only when it says so."""
        lifecycle.on_forget.append(self.capped.discard)  # one that ended is no longer capped

    def take_back(self, node: Node, cores: Iterable[int], reason: str) -> None:
        """Preempt every execution holding one of ``cores`` on ``node``."""
        holders = {node.granted[c] for c in cores if c in node.granted}
        for execution in sorted(holders):
            self.preempt(execution, reason)

    def shortfall(self, node: Node, sim_running: bool) -> None:
        """An unbound simulation needs more cores than are left to it, and its ranks' run
        delay shows them kept waiting (or the agent does not report it): take the newest
        grants back. Tasks run at SCHED_IDLE: ranks that use more cores than are left
        but do not wait are not hurt, and their tasks run on in what the kernel leaves."""
        if not sim_running or node.reported_bound or not node.sim_n:
            return
        if node.sim_wait is not None and node.sim_wait <= HURT_WAIT * node.sim_n:
            return
        need = min(len(node.cores), unbound_cores(node.sim_cpu))
        missing = need - (len(node.cores) - len(node.granted))
        active = self.decider.active
        victims = sorted({e for e in node.granted.values() if e in active},
                         key=lambda e: active[e][2][0], reverse=True)
        for execution in victims[:max(0, missing)]:
            self.preempt(execution, "the simulation needs its cores back")

    def preempt(self, execution: str, reason: str, *, policy: str | None = None,
                capped: bool = False) -> None:
        held = self.decider.active.get(execution)
        if held is None:
            return
        task, _, cores = held
        policy = policy or self.decider.specs.get(task, {}).get("preempt", "pause")
        if execution in self.decider.spans:
            policy = "requeue"  # over several nodes: it can be neither stopped nor moved as one
        if capped:
            self.capped.add(execution)
        if policy == "repin" and self._repin(execution, cores, reason):
            return
        if policy == "requeue":
            self.lifecycle.stop_to_requeue(execution, reason)
        else:
            self.lifecycle.pause(execution, reason)

    def _repin(self, execution: str, cores: list[int], reason: str) -> bool:
        node = self.decider.active[execution][1]
        if node not in self.decider.nodes:
            return False
        free = [c for c in self.decider.free_cores()[node] if c not in cores]
        if len(free) < len(cores):
            return False
        self.lifecycle.repin(execution, free[:len(cores)], reason)
        return True

    def resume_paused(self) -> None:
        """Resume paused executions, re-pinned, wherever their node has cores free again."""
        paused = self.lifecycle.paused
        if not paused:
            return
        free = self.decider.free_cores()
        for execution, (_, node, n) in list(paused.items()):
            cores = free.get(node, [])
            if execution in self.capped or len(cores) < n:
                continue
            grant, free[node] = cores[:n], cores[n:]
            self.lifecycle.resume(execution, grant)
