"""Selection algorithms: the order in which queued executions are considered.

A selection is one small class: ``name`` and ``order(pending, now)`` returning the pending
executions best first. ``Pending.expected_s`` (from the profile store) and
``Pending.deadline`` (unix seconds) are there for policies that need them.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pending:
    """A queued execution as the decision core sees it."""

    execution: str
    task: str
    args: dict[str, Any]
    submitted_at: float
    priority: int = 0
    deadline: float | None = None
    not_before: float = 0.0
    attempt: int = 0
    expected_s: float | None = None
    seq: int = field(default=0, compare=False)


class Selection(abc.ABC):
    """Contract: return the executions in the order they should be tried; never drop one."""

    name: str

    @abc.abstractmethod
    def order(self, pending: Sequence[Pending], now: float) -> list[Pending]: ...


class Fifo(Selection):
    """First submitted, first considered."""

    name = "fifo"

    def order(self, pending: Sequence[Pending], now: float) -> list[Pending]:
        return list(pending)  # the queue is kept in submission order


class PriorityFirst(Selection):
    """Highest priority first; FIFO among equals."""

    name = "priority"

    def order(self, pending: Sequence[Pending], now: float) -> list[Pending]:
        return sorted(pending, key=lambda p: -p.priority)


class ShortestFirst(Selection):
    """Shortest expected duration first (profile estimate); unknown durations last."""

    name = "shortest"

    def order(self, pending: Sequence[Pending], now: float) -> list[Pending]:
        inf = float("inf")
        return sorted(pending, key=lambda p: inf if p.expected_s is None else p.expected_s)


class EarliestDeadline(Selection):
    """Earliest deadline first; executions without a deadline after all others."""

    name = "deadline"

    def order(self, pending: Sequence[Pending], now: float) -> list[Pending]:
        inf = float("inf")
        return sorted(pending, key=lambda p: inf if p.deadline is None else p.deadline)


SELECTIONS: dict[str, type[Selection]] = {
    c.name: c for c in (Fifo, PriorityFirst, ShortestFirst, EarliestDeadline)
}
