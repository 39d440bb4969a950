"""The decision core: one scheduling cycle over the queue and the nodes. No I/O here.

A cycle computes each node's free cores, asks the selection for the queue order and the
placement for cores, and returns the placements; the service turns them into commands.
Grants are the scheduler's own: a granted core stays taken until the task is paused,
moved or gone, however little CPU the task uses.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from odop.scheduler.cluster import Node
from odop.scheduler.placement import Placement
from odop.scheduler.selection import Pending, Selection


@dataclass(frozen=True)
class Placed:
    """An execution granted ``cores`` on ``node``; the service sends it a start command."""

    pending: Pending
    node: str
    cores: list[int]


class Decider:
    """Queue, nodes and grants, and the cycle that matches them."""

    def __init__(self, selection: Selection, placement: Placement, *,
                 busy_threshold: float = 0.5) -> None:
        self.selection, self.placement = selection, placement
        self.busy_threshold = busy_threshold
        self.nodes: dict[str, Node] = {}
        self.pending: dict[str, Pending] = {}
        self.active: dict[str, tuple[str, str, list[int]]] = {}
        """execution -> (task, node, cores) for placed, running and paused executions."""
        self.per_task: Counter[str] = Counter()
        self.specs: dict[str, dict[str, Any]] = {}
        self.sim_running = True

    def enqueue(self, p: Pending) -> None:
        self.pending[p.execution] = p

    def activate(self, execution: str, task: str, node: str, cores: list[int]) -> None:
        """Record an execution holding ``cores`` on ``node`` (also after a restart)."""
        self.pending.pop(execution, None)
        self.active[execution] = (task, node, list(cores))
        self.per_task[task] += 1
        if node in self.nodes:
            self.nodes[node].grant(cores, execution)

    def release(self, execution: str) -> str | None:
        """Forget an execution's grant; returns its node."""
        held = self.active.pop(execution, None)
        if held is None:
            return None
        task, node, _ = held
        self.per_task[task] -= 1
        if node in self.nodes:
            self.nodes[node].release(execution)
        return node

    def add_node(self, node: Node) -> None:
        """A node (new, or back after a restart) re-takes the grants recorded for it."""
        self.nodes[node.name] = node
        for execution, (_, where, cores) in self.active.items():
            if where == node.name:
                node.grant(cores, execution)

    def free_cores(self) -> dict[str, list[int]]:
        return {name: node.free(sim_running=self.sim_running, threshold=self.busy_threshold)
                for name, node in self.nodes.items()}

    def cycle(self, now: float) -> list[Placed]:
        """Place as many queued executions as the free cores allow."""
        if not self.pending:
            return []
        free = self.free_cores()
        left = sum(len(c) for c in free.values())
        placed: list[Placed] = []
        for p in self.selection.order(list(self.pending.values()), now):
            if left <= 0:
                break
            spec = self.specs.get(p.task)
            if spec is None or p.not_before > now or not self._may_run(p.task, spec):
                continue
            want_min, want_max = cores_wanted(spec)
            choice = self.placement.place(free, want_min, want_max)
            if choice is None:
                continue
            node, cores = choice
            taken = set(cores)
            free[node] = [c for c in free[node] if c not in taken]
            left -= len(cores)
            self.activate(p.execution, p.task, node, cores)
            placed.append(Placed(p, node, cores))
        return placed

    def _may_run(self, task: str, spec: dict[str, Any]) -> bool:
        limit = spec.get("max_runs")
        return limit is None or self.per_task[task] < limit


def cores_wanted(spec: dict[str, Any]) -> tuple[int, int]:
    """Whole cores to grant, as (at least, at most), from the spec's cpus min/max."""
    low = max(1, math.ceil(spec.get("cpus_min", 1.0) - 1e-9))
    high = max(low, math.floor(spec.get("cpus_max", low) + 1e-9))
    return low, high
