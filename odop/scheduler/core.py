"""The decision core: one scheduling cycle over the queue and the nodes. No I/O here.

A cycle takes each node's free cores, the queue in the selection's order and the
placement's choice of cores, and returns the placements; the service turns them into
commands. Grants are the scheduler's own: a granted core stays taken until the task is
paused, moved or gone, however little CPU the task uses.

Everything a cycle reads is kept up to date as events arrive, so a cycle costs what it
places, not the size of the cluster: nodes cache their free cores and report changes;
the free-core index is updated for changed nodes only; the queue is kept sorted by the
selection's key; a cycle stops as soon as no core is left.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, NamedTuple

from odop.scheduler.cluster import Node
from odop.scheduler.depends import Dependencies
from odop.scheduler.fit import (
    across,
    holds,
    never_fit,
    place_where,
    roomy,
    wanted,
    with_gpus,
)
from odop.scheduler.freeindex import FreeIndex
from odop.scheduler.placement import Placement
from odop.scheduler.selection import Pending, Queue, Selection


class Placed(NamedTuple):
    """An execution granted ``cores`` (and ``gpus``, NVML indices) on ``node``, and, for an
    mpi task over several nodes, ``spans`` (node, cores) on the others; the service sends
    ``node``'s agent a start command. A tuple: a burst makes thousands in one cycle."""

    pending: Pending
    node: str
    cores: list[int]
    gpus: list[int]
    spans: list[tuple[str, list[int]]]


class Decider:
    """Queue, nodes and grants, and the cycle that matches them."""

    def __init__(self, selection: Selection, placement: Placement, *,
                 busy_threshold: float = 0.5, share_bound: bool = True,
                 memory_reserve: float = 0.1) -> None:
        self.selection, self.placement = selection, placement
        self._threshold, self._sim_running = busy_threshold, True
        self.share_bound = share_bound
        """Offer bound cores whose ranks mostly wait (used < the threshold) to tasks."""
        self.memory_reserve = memory_reserve
        """Share (0..1) of each node's memory never promised to tasks."""
        self._index = FreeIndex()
        self._stale = True
        """Rebuild the index on the next cycle (node set, threshold or sim state changed)."""
        self._dirty: set[str] = set()
        """Nodes whose free cores may have changed since the index last saw them."""
        self.nodes: dict[str, Node] = {}
        """Nodes by name: change them through add_node and remove_node (they re-index)."""
        self.pending: Queue = Queue(selection)
        """Queued executions by id; delete from it directly to drop one."""
        self.active: dict[str, tuple[str, str, list[int]]] = {}
        """execution -> (task, node, cores) for placed, running and paused executions."""
        self.per_task: Counter[str] = Counter()
        self.specs: dict[str, dict[str, Any]] = {}
        self.depends = Dependencies()
        """Which queued executions wait for those they depend on (``depends_on``)."""
        self.granted = 0
        """Cores held by active executions, all nodes together."""
        self.gpus_held: dict[str, tuple[str, list[int]]] = {}
        """execution -> (node, GPU indices), from placement until it ends (paused too)."""
        self.spans: dict[str, list[tuple[str, list[int]]]] = {}
        """execution -> (node, cores) it holds beyond its own node: an mpi task over
        several nodes, whose launcher runs on the node in ``active``."""
        self.core_limit: Callable[[int], int] | None = None
        """Given the cores odop could hold now (held + free), how many it may hold (the
        energy policy's concurrency); None: all of them."""

    @property
    def sim_running(self) -> bool:
        return self._sim_running

    @sim_running.setter
    def sim_running(self, value: bool) -> None:
        self._sim_running = value
        self._stale = True

    @property
    def busy_threshold(self) -> float:
        """Utilisation (0..1) above which a core of unbound ranks counts as busy."""
        return self._threshold

    @busy_threshold.setter
    def busy_threshold(self, value: float) -> None:
        self._threshold = value
        self._stale = True
        for node in self.nodes.values():
            node.share_below = self._share_below()

    def _share_below(self) -> float:
        return self._threshold if self.share_bound else 0.0

    def _restale(self) -> None:
        self._stale = True

    def enqueue(self, p: Pending) -> None:
        self.depends.added(p.execution, p.task, p.args)
        self.pending[p.execution] = p

    def resort(self) -> None:
        """Re-sort the queue after an input of the selection's key changed."""
        self.pending.resort()

    def activate(self, execution: str, task: str, node: str, cores: list[int]) -> None:
        """Record an execution holding ``cores`` on ``node`` (also after a restart)."""
        self.pending.pop(execution, None)
        if execution in self.active:  # a grant recorded again replaces the old one
            self.release(execution, keep_gpus=True)
        self.active[execution] = (task, node, list(cores))
        self.per_task[task] += 1
        self.granted += len(cores)
        if node in self.nodes:
            self.nodes[node].grant(cores, execution)

    def hold_gpus(self, execution: str, node: str, gpus: list[int]) -> None:
        """Record an execution holding ``gpus`` on ``node`` (also after a restart)."""
        if gpus:
            self.gpus_held[execution] = (node, list(gpus))
            if node in self.nodes:
                self.nodes[node].grant_gpus(gpus, execution)

    def hold_spans(self, execution: str, spans: list[tuple[str, list[int]]]) -> None:
        """Record an execution holding cores on other nodes too (also after a restart)."""
        if spans:
            self.spans[execution] = [(node, list(cores)) for node, cores in spans]
            for node, cores in spans:
                self.granted += len(cores)
                if node in self.nodes:
                    self.nodes[node].grant(cores, execution)

    def release(self, execution: str, *, keep_gpus: bool = False) -> str | None:
        """Forget an execution's grant, its GPUs too unless ``keep_gpus`` (it is paused or
        moved, not gone); returns the node of its cores."""
        gpus = None if keep_gpus else self.gpus_held.pop(execution, None)
        if gpus is not None and gpus[0] in self.nodes:
            self.nodes[gpus[0]].release_gpus(execution)
        for node, cores in self.spans.pop(execution, ()):
            self.granted -= len(cores)
            if node in self.nodes:
                self.nodes[node].release(execution)
        held = self.active.pop(execution, None)
        if held is None:
            return None
        task, node, cores = held
        self.per_task[task] -= 1
        self.granted -= len(cores)
        if node in self.nodes:
            self.nodes[node].release(execution)
        return node

    def add_node(self, node: Node) -> None:
        """A node (new, or back after a restart) re-takes the grants recorded for it."""
        node.listener = self._dirty.add
        node.share_below = self._share_below()
        self.nodes[node.name] = node
        self._restale()
        for execution, (_, where, cores) in self.active.items():
            if where == node.name:
                node.grant(cores, execution)
        for execution, (where, gpus) in self.gpus_held.items():
            if where == node.name:
                node.grant_gpus(gpus, execution)
        for execution, spans in self.spans.items():
            for where, cores in spans:
                if where == node.name:
                    node.grant(cores, execution)

    def remove_node(self, name: str) -> None:
        """Forget a node (gone silent); its executions are the caller's to requeue."""
        del self.nodes[name]
        self._restale()

    def has_free_core(self) -> bool:
        """True when some node has a core free now (from the index: no copies)."""
        return self._refresh().total > 0

    def free_cores(self) -> dict[str, list[int]]:
        """Free cores per node now (new lists)."""
        index = self._refresh()
        return {name: list(index[name]) for name in index}

    def _refresh(self) -> FreeIndex:
        """The free-core index, brought up to date with the nodes that changed."""
        running, threshold = self._sim_running, self._threshold
        if self._stale:
            self._stale = False
            self._dirty.clear()
            self._index = FreeIndex({name: node.free_view(running, threshold)
                                     for name, node in self.nodes.items()})
        elif self._dirty:
            for name in self._dirty:
                node = self.nodes.get(name)
                if node is not None:
                    self._index.set(name, node.free_view(running, threshold))
            self._dirty.clear()
        return self._index

    def cycle(self, now: float) -> list[Placed]:
        """Place as many queued executions as the free cores (and the core limit) allow."""
        if not self.pending:
            return []
        free = self._refresh()
        room = self._room(free.total)
        if room <= 0:
            return []
        placed: list[Placed] = []
        wants: dict[str, tuple[int, int, int, int, int]] = {}
        specs, per_task, place = self.specs, self.per_task, self.placement.place
        weighs_gpus, running = self.placement.weighs_gpus, self._sim_running
        for p in self.pending.ordered(now):
            task = p.task
            spec = specs.get(task)
            if spec is None or p.not_before > now:
                continue
            if spec.get("depends_on") and self.depends.waits(p, spec["depends_on"]):
                continue
            limit = spec.get("max_runs")
            if limit is not None and per_task[task] >= limit:
                continue
            want = wants.get(task) or wants.setdefault(task, wanted(spec))
            lo, hi, n_gpus, mem_min, n_nodes = want
            if lo > free.max_count() or lo * n_nodes > room:
                continue  # nothing fits it, and cores only get fewer in a cycle
            top = hi if hi < room else room
            # while the simulation runs, also what the task used before: its headroom
            need = max(mem_min, p.expected_bytes or 0) if running else mem_min
            spans: list[tuple[str, list[int]]] = []
            gpus: list[int] = []
            if n_nodes > 1:
                wide = across(self, free, lo, min(hi, room // n_nodes), n_nodes, need)
                choice, spans = (wide[0], wide[1:]) if wide else (None, [])
            elif n_gpus or weighs_gpus:
                choice, gpus = with_gpus(self, free, lo, top, n_gpus, need)
            else:
                choice, gpus = place(free, lo, top), []
                if choice is not None and need and not holds(self, choice[0], need):
                    choice = place_where(self, roomy(self, free, need), lo, top)
            if choice is None:
                continue
            node, cores = choice
            self.activate(p.execution, task, node, cores)
            if gpus:
                self.hold_gpus(p.execution, node, gpus)
            if spans:
                self.hold_spans(p.execution, spans)
            if need:
                for where, _ in [choice, *spans]:
                    self.nodes[where].promise(p.execution, need)
            free = self._refresh()
            room -= len(cores) * n_nodes
            placed.append(Placed(p, node, cores, gpus, spans))
            if room <= 0 or free.total <= 0:
                break
        return placed

    def never_fit(self) -> dict[str, str]:
        """Queued executions no node could ever run, each with why (odop.scheduler.fit)."""
        return never_fit(self)

    def _room(self, free: int) -> int:
        """Cores this cycle may grant: the free ones, within the core limit."""
        if self.core_limit is None:
            return free
        return max(0, min(free, self.core_limit(self.granted + free) - self.granted))
