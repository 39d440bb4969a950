"""Giving cores back to the simulation: phase lending, and pause / re-pin / requeue.

While a bound rank is inside an idle phase (``odop.phase("io")``) its cores are lent to
tasks. When the phase ends, or an unbound simulation's CPU use grows past the cores left
to it, the tasks on the cores it needs are preempted at once, each by its own policy:
``pause`` (SIGSTOP; resumed, re-pinned, when cores free up), ``repin`` (moved to a core
still idle, else paused) or ``requeue`` (stopped with TERM and a grace period — a resumable
task checkpoints then — and queued again; not a failure).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from odop.phasegate import PhaseTimes
from odop.protocol import MsgType
from odop.scheduler.cluster import Node
from odop.store.states import ExecState

if TYPE_CHECKING:
    from odop.scheduler.service import SchedulerService


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
    """The service's preemption actions; state changes go through the run store."""

    def __init__(self, service: SchedulerService) -> None:
        self.service = service
        self.paused: dict[str, tuple[str, str, int]] = {}
        """execution -> (task, node, cores it needs) for executions paused by us."""
        self.requeueing: set[str] = set()
        self.capped: set[str] = set()
        """Paused executions held by the power cap: resumed only when it says so."""

    def take_back(self, node: Node, cores: Iterable[int], reason: str) -> None:
        """Preempt every execution holding one of ``cores`` on ``node``."""
        holders = {node.granted[c] for c in cores if c in node.granted}
        for execution in sorted(holders):
            self.preempt(execution, reason)

    def shortfall(self, node: Node, sim_running: bool) -> None:
        """An unbound simulation needs more cores than are left to it: take the newest
        grants back."""
        if not sim_running or node.reported_bound or not node.sim_n:
            return
        need = min(len(node.cores), math.ceil(node.sim_cpu - 0.25))
        missing = need - (len(node.cores) - len(node.granted))
        decider = self.service.decider
        victims = sorted({e for e in node.granted.values() if e in decider.active},
                         key=lambda e: decider.active[e][2][0], reverse=True)
        for execution in victims[:max(0, missing)]:
            self.preempt(execution, "the simulation needs its cores back")

    def preempt(self, execution: str, reason: str, *, policy: str | None = None,
                capped: bool = False) -> None:
        svc = self.service
        held = svc.decider.active.get(execution)
        if held is None:
            return
        task, node_name, cores = held
        policy = policy or svc.decider.specs.get(task, {}).get("preempt", "pause")
        if execution in svc.decider.spans:
            policy = "requeue"  # over several nodes: it can be neither stopped nor moved as one
        if capped:
            self.capped.add(execution)
        if policy == "repin" and self._repin(execution, cores, reason):
            return
        if policy == "requeue":
            self.requeueing.add(execution)
            svc.send_command(execution, MsgType.KILL, reason=f"preempted: {reason}")
            return
        svc.store.transition(execution, ExecState.PAUSED, detail=reason)  # may be just placed
        svc.send_command(execution, MsgType.PAUSE)  # after its START: the agent runs, stops it
        svc.decider.release(execution, keep_gpus=True)
        self.paused[execution] = (task, node_name, len(cores))

    def _repin(self, execution: str, cores: list[int], reason: str) -> bool:
        svc = self.service
        task, node_name, _ = svc.decider.active[execution]
        node = svc.decider.nodes.get(node_name)
        if node is None:
            return False
        free = [c for c in svc.decider.free_cores()[node_name] if c not in cores]
        if len(free) < len(cores):
            return False
        new = free[:len(cores)]
        svc.decider.release(execution, keep_gpus=True)
        svc.decider.activate(execution, task, node_name, new)
        svc.send_command(execution, MsgType.REPIN, cores=new)
        svc.store.update(execution, f"repinned to {new}: {reason}", cores=new)
        return True

    def resume_paused(self) -> None:
        """Resume paused executions, re-pinned, wherever their node has cores free again."""
        if not self.paused:
            return
        svc = self.service
        free = svc.decider.free_cores()
        for execution, (task, node_name, n) in list(self.paused.items()):
            if execution in self.capped:
                continue
            cores = free.get(node_name, [])
            if len(cores) < n:
                continue
            grant, free[node_name] = cores[:n], cores[n:]
            del self.paused[execution]
            svc.decider.activate(execution, task, node_name, grant)
            svc.send_command(execution, MsgType.REPIN, cores=grant)
            svc.send_command(execution, MsgType.RESUME)
            svc.store.transition(execution, ExecState.RUNNING, detail=f"resumed on {grant}",
                                 cores=grant)

    def forget(self, execution: str) -> None:
        """Drop an execution that is gone (lost with its node or agent)."""
        self.paused.pop(execution, None)
        self.capped.discard(execution)
        self.requeueing.discard(execution)

    def owns(self, execution: str) -> bool:
        return execution in self.paused

    def exited(self, row: dict[str, Any], usage: dict[str, Any]) -> bool:
        """Handle the exit of a paused or requeueing execution; False if not ours."""
        svc, execution = self.service, row["id"]
        if execution in self.requeueing or execution in self.paused:
            svc.started_at.pop(execution, None)
        if execution in self.requeueing:
            self.requeueing.discard(execution)
            svc.decider.release(execution)
            svc.store.transition(execution, ExecState.QUEUED, detail="requeued after preemption",
                                 node=None, cores=None, pid=None, not_before=time.time())
            svc.requeue(execution)
            return True
        self.capped.discard(execution)
        if self.paused.pop(execution, None) is not None:
            svc.decider.release(execution)  # its GPUs
            svc.finish(row, usage, ended_at=time.time())
            return True
        return False
