"""Placement algorithms: which free cores of which node an execution gets.

A placement is one small class: ``name`` and ``place(free, want_min, want_max)`` returning
``(node, cores)`` or None when nothing fits. ``free`` maps node name to its free cores.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

Choice = tuple[str, list[int]]


class Placement(abc.ABC):
    """Contract: pick between ``want_min`` and ``want_max`` cores on one node, or None."""

    name: str

    @abc.abstractmethod
    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None: ...


def _take(node: str, cores: Sequence[int], want_max: int) -> Choice:
    return node, list(cores[:want_max])


class FirstFit(Placement):
    """The first node (in order) with enough free cores."""

    name = "first_fit"

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        for node, cores in free.items():
            if len(cores) >= want_min:
                return _take(node, cores, want_max)
        return None


class BestFit(Placement):
    """The node whose free cores fit the request most tightly (keeps big holes whole)."""

    name = "best_fit"

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        fits = [(len(c), n) for n, c in free.items() if len(c) >= want_min]
        if not fits:
            return None
        node = min(fits)[1]
        return _take(node, free[node], want_max)


class WorstFit(Placement):
    """The node with the most free cores (spreads load)."""

    name = "worst_fit"

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        fits = [(len(c), n) for n, c in free.items() if len(c) >= want_min]
        if not fits:
            return None
        node = max(fits)[1]
        return _take(node, free[node], want_max)


class RoundRobin(Placement):
    """Each placement starts looking at the node after the previous one."""

    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def place(self, free: Mapping[str, Sequence[int]], want_min: int,
              want_max: int) -> Choice | None:
        nodes = list(free)
        for i in range(len(nodes)):
            node = nodes[(self._next + i) % len(nodes)]
            if len(free[node]) >= want_min:
                self._next = (self._next + i + 1) % len(nodes)
                return _take(node, free[node], want_max)
        return None


PLACEMENTS: dict[str, type[Placement]] = {
    c.name: c for c in (FirstFit, BestFit, WorstFit, RoundRobin)
}
