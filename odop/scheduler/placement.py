"""Placement algorithms: which free cores of which node an execution gets.

A placement is one small class: ``name`` and ``place(free, want_min, want_max)`` returning
``(node, cores)`` or None when nothing fits. ``free`` maps node name to its free cores
(in core order, nodes in cluster order); from the decider it is a
:class:`~odop.scheduler.freeindex.FreeIndex`, whose ``first``, ``tightest`` and ``loosest``
answer "which node" without scanning every node. The built-ins accept any mapping.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from odop.plugins import PLACEMENTS
from odop.scheduler.freeindex import FreeIndex

Choice = tuple[str, list[int]]


class Placement(abc.ABC):
    """Contract: pick between ``want_min`` (>= 1) and ``want_max`` cores on one node, or
    None when no node has ``want_min`` free cores. For a task that needs GPUs, ``free``
    holds only the nodes with enough of them free (the decider then picks the GPUs)."""

    name: str
    weighs_gpus: bool = False
    """Set it to have ``free_gpus`` (node -> GPUs free now, nodes with GPUs only) kept
    current by the decider before each call."""
    free_gpus: Mapping[str, int] = {}

    @abc.abstractmethod
    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None: ...


def _take(free: Mapping[str, Sequence[int]], node: str | None, want_max: int) -> Choice | None:
    return None if node is None else (node, list(free[node][:want_max]))


class FirstFit(Placement):
    """The first node (in order) with enough free cores."""

    name = "first_fit"

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        return _take(free, FreeIndex.of(free).first(want_min), want_max)


class BestFit(Placement):
    """The node whose free cores fit the request most tightly (keeps big holes whole);
    the first by name among equals."""

    name = "best_fit"

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        return _take(free, FreeIndex.of(free).tightest(want_min), want_max)


class WorstFit(Placement):
    """The node with the most free cores (spreads load); the last by name among equals."""

    name = "worst_fit"

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        return _take(free, FreeIndex.of(free).loosest(want_min), want_max)


class RoundRobin(Placement):
    """Each placement starts looking at the node after the previous one."""

    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        index = FreeIndex.of(free)
        if not index:
            return None
        node = index.first(want_min, self._next % len(index))
        if node is not None:
            self._next = (index.position(node) + 1) % len(index)
        return _take(free, node, want_max)


class GpuAware(Placement):
    """First fit, but a task is placed beside free GPUs only when nothing else fits it:
    the cores next to an idle GPU are kept for the tasks that need that GPU."""

    name = "gpu_aware"
    weighs_gpus = True

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        index = FreeIndex.of(free)
        first = node = index.first(want_min)
        while node is not None and self.free_gpus.get(node):
            after = index.first(want_min, index.position(node) + 1)
            if after is None or index.position(after) <= index.position(node):
                return _take(free, first, want_max)  # every fit has free GPUs
            node = after
        return _take(free, node, want_max)


for _builtin in (FirstFit, BestFit, WorstFit, RoundRobin, GpuAware):
    PLACEMENTS.register(_builtin)


def make_placement(name: str) -> Placement:
    """The placement registered as ``name`` (ConfigError naming the allowed ones)."""
    return PLACEMENTS.get(name)()
