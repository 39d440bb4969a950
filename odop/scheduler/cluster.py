"""What the scheduler knows of each node: its cores, the simulation's use, and its grants.

A node keeps its free cores cached and updates them on a sample, a grant or a release,
so a scheduling cycle never recomputes a node that did not change;
odop/scheduler/freeindex.py indexes every node's free cores for placement.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from odop.protocol.messages import NodeView


@dataclass
class Node:
    """One node as seen through its agent's samples (utilisation 0..1 per core)."""

    name: str
    identity: bytes
    cores: list[int]
    host: str = ""
    """Its host name, for a launcher (the node id may differ); the name until sampled."""
    util: list[float] = field(default_factory=list)
    sim_bound: frozenset[int] = frozenset()
    sim_n: int = 0
    """Simulation processes the agent sees on this node."""
    sim_cpu: float = 0.0
    """Cores' worth of CPU the simulation used over the last sample."""
    sim_wait: float | None = None
    """Cores' worth of time its ranks waited for a CPU over the last sample (run delay);
    None when the agent does not say."""
    granted: dict[int, str] = field(default_factory=dict)
    """core -> execution holding it; a grant is held until the task is paused, moved or gone."""
    gpus: list[dict[str, Any]] = field(default_factory=list)
    """The GPUs as last sampled: index, util (0..1), mem_used, mem_total (bytes), foreign
    (a process that is not one of odop's tasks, such as a rank, holds a context on it)."""
    mem_total: int = 0
    mem_available: int | None = None
    """Bytes the node could still give (its last sample; None: not known)."""
    _promised: dict[str, int] = field(default_factory=dict, init=False, repr=False,
                                      compare=False)
    """execution -> bytes promised to tasks placed since the previous sample, which the
    latest one may not show in use yet."""
    _promised_before: dict[str, int] = field(default_factory=dict, init=False, repr=False,
                                             compare=False)
    gpus_granted: dict[int, str] = field(default_factory=dict)
    """GPU index -> execution holding it, from its placement until it ends (a paused task
    keeps its GPU memory, so it keeps its GPU)."""
    sim_alive: bool = True
    last_seen: float = field(default_factory=time.monotonic)
    power_w: float | None = None
    power_source: str = ""
    sampled: bool = False
    """No core is offered before a sample says where the simulation runs."""
    reported_bound: frozenset[int] = frozenset()
    """Cores the ranks are bound to, as sampled; ``sim_bound`` is this minus ``lent``."""
    lent: frozenset[int] = frozenset()
    """Bound cores whose ranks are in an idle phase now (odop.phase)."""
    share_below: float = 0.0
    """A bound core whose ranks used less than this (cores, 0..1) over each of the last
    two samples is shared: tasks run on it at idle priority, below the waiting rank (0:
    never)."""
    shared: frozenset[int] = frozenset()
    """Bound cores shared now: their ranks mostly waited over the last two samples (one
    sample could be a pause, or a rank's first, partial interval)."""
    _waited: frozenset[int] = field(default=frozenset(), init=False, repr=False,
                                    compare=False)
    """Bound cores whose ranks mostly waited over the previous sample."""
    listener: Callable[[str], Any] | None = field(default=None, repr=False, compare=False)
    """Called with the node's name whenever its free cores may have changed."""
    _free: list[int] | None = field(default=None, init=False, repr=False, compare=False)
    _free_for: tuple[bool, float] = field(default=(True, 0.0), init=False, repr=False,
                                          compare=False)
    _held: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False,
                                        compare=False)
    """execution -> the cores granted to it, to release without a scan."""
    _rank: dict[int, int] = field(default_factory=dict, init=False, repr=False, compare=False)
    _util: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False, repr=False,
                              compare=False)
    _util_of: list[float] | None = field(default=None, init=False, repr=False, compare=False)
    """The ``util`` list that ``_util`` (its array) was made from."""
    _rank_of: list[int] | None = field(default=None, init=False, repr=False, compare=False)

    def update(self, view: NodeView, sim_alive: bool) -> frozenset[int]:
        """Take in an agent's view (odop.protocol.messages.NodeView, validated on receipt);
        returns the shared cores whose ranks got busy again."""
        self._util = np.asarray(view.get("util", []), dtype=float)
        self.util = self._util_of = self._util.tolist()
        reported = [int(c) for c in view.get("sim_bound", [])]
        self.reported_bound = frozenset(reported)
        use = [float(u) for u in view.get("sim_use") or []]
        waiting = frozenset(c for c, u in zip(reported, use, strict=False)
                            if u < self.share_below)
        shared = waiting & self._waited
        busy_again, self.shared, self._waited = self.shared - shared, shared, waiting
        bound = self.reported_bound - self.lent - self.shared
        same = self.sampled and bool(self.reported_bound) and bound == self.sim_bound
        self.sim_bound = bound
        self.sim_n = int(view.get("sim_n", 0))
        self.sim_cpu = float(view.get("sim_cpu", 0.0))
        wait = view.get("sim_wait")
        self.sim_wait = float(wait) if isinstance(wait, (int, float)) else None
        self.sim_alive = sim_alive
        self.power_w = view.get("power_w")
        self.gpus = list(view.get("gpus") or [])
        self.host = str(view.get("host") or self.host or self.name)
        self.mem_total = int(view.get("mem_total") or 0)
        available = view.get("mem_available")
        self.mem_available = int(available) if available is not None else None
        self._promised_before, self._promised = self._promised, {}
        self.power_source = view.get("power_source", "")
        self.last_seen = time.monotonic()
        # ranks expected but not seen yet (just started): every core may be theirs
        self.sampled = not (view.get("sim_expected") and not self.sim_n and sim_alive)
        if not same:  # bound ranks on the same cores: free cores do not depend on the rest
            self._changed()
        return busy_again

    def lend(self, cores: frozenset[int]) -> None:
        """Set the bound cores lent by ranks in an idle phase."""
        if cores != self.lent:
            self.lent = cores
            self.sim_bound = self.reported_bound - cores - self.shared
            self._changed()

    def sim_cores(self, threshold: float) -> set[int]:
        """Cores the simulation holds: those its ranks are bound to, or, for unbound ranks,
        the busiest cores above ``threshold`` (0..1) that no task of ours was granted, as
        many as the simulation's CPU use accounts for. Lent and shared cores are not held."""
        if self.reported_bound:
            return set(self.sim_bound)
        if not self.sim_n:
            return set()
        n = min(len(self.cores), len(self.util))
        util = self._util if self._util_of is self.util else np.asarray(self.util, dtype=float)
        busy = util[:n] > threshold
        if self.granted:
            rank = self._rank if self._rank_of is self.cores else self._ranks()
            busy[[i for i in map(rank.get, self.granted) if i is not None and i < n]] = False
        idx = np.flatnonzero(busy)
        want = unbound_cores(self.sim_cpu)
        if want == 0:
            return set()
        cores = np.asarray(self.cores[:n])
        if idx.size > want:  # the busiest first, higher core first among equals
            idx = idx[np.lexsort((cores[idx], util[idx]))[-want:]]
        return set(cores[idx].tolist())

    def free(self, *, sim_running: bool, threshold: float) -> list[int]:
        """Cores free for a new task now, in core order (a new list)."""
        return list(self.free_view(sim_running, threshold))

    def free_view(self, sim_running: bool, threshold: float) -> list[int]:
        """:meth:`free` without the copy: cached until the node changes; do not mutate it."""
        if not self.sampled:
            return []
        if self._free is None or self._free_for != (sim_running, threshold):
            busy = self.sim_cores(threshold) if sim_running else set()
            busy.update(self.granted)
            self._free = [c for c in self.cores if c not in busy]
            self._free_for = (sim_running, threshold)
        return self._free

    def grant(self, cores: Sequence[int], execution: str) -> None:
        for c in cores:
            self.granted[c] = execution
        self._held.setdefault(execution, []).extend(cores)
        free, k = self._free, len(cores)
        if free is not None and free[:k] == list(cores):
            self._free = free[k:]  # the usual case: the first free cores were taken
        elif free is not None and set(cores).issubset(free):
            taken = set(cores)
            self._free = [c for c in free if c not in taken]
        else:
            self._free = None
        self._notify()

    def release(self, execution: str) -> None:
        held = self._held.pop(execution, None)
        if held is None:
            held = [c for c, e in self.granted.items() if e == execution]
        back = [c for c in held if self.granted.get(c) == execution]
        for c in back:
            del self.granted[c]
        free = self._free
        running = self._free_for[0]
        if free is not None and (self.reported_bound or not running):
            rank = self._rank if self._rank_of is self.cores else self._ranks()
            back = [c for c in back if c in rank and (not running or c not in self.sim_bound)]
            self._free = sorted(free + back, key=rank.__getitem__) if back else free
            self._notify()  # bound ranks or no simulation: the cores simply come back
        else:
            self._changed()

    def free_gpus(self, threshold: float) -> list[int]:
        """GPUs free for a new task, least used first: not granted, no foreign process on
        them, and used at most ``threshold`` (0..1: what NVML shows but cannot attribute)."""
        free = [g for g in self.gpus if g["index"] not in self.gpus_granted
                and not g["foreign"] and g["util"] <= threshold]
        free.sort(key=lambda g: (g["util"], g["mem_used"], g["index"]))
        return [g["index"] for g in free]

    def mem_free(self, reserve: float) -> float:
        """Bytes a new task may take: available, less ``reserve`` (0..1) of the total and
        what was promised to tasks placed since the previous sample; inf when unknown."""
        if self.mem_available is None:
            return math.inf
        promised = sum(self._promised.values()) + sum(self._promised_before.values())
        return self.mem_available - reserve * self.mem_total - promised

    def promise(self, execution: str, nbytes: int) -> None:
        self._promised[execution] = nbytes

    def grant_gpus(self, gpus: Sequence[int], execution: str) -> None:
        for g in gpus:
            self.gpus_granted[g] = execution

    def release_gpus(self, execution: str) -> None:
        for g in [g for g, e in self.gpus_granted.items() if e == execution]:
            del self.gpus_granted[g]

    def _ranks(self) -> dict[int, int]:
        self._rank = {c: i for i, c in enumerate(self.cores)}
        self._rank_of = self.cores
        return self._rank

    def _changed(self) -> None:
        self._free = None
        self._notify()

    def _notify(self) -> None:
        if self.listener is not None:
            self.listener(self.name)


def unbound_cores(sim_cpu: float) -> int:
    """Cores unbound ranks hold: those their recent use fills (``sim_cpu`` cores' worth,
    rounded half down). Tasks run at SCHED_IDLE, so on the rest the kernel gives a rank
    that wakes its CPU at once; preemption follows the ranks' run delay, not this count."""
    return max(0, math.ceil(sim_cpu - 0.5))
