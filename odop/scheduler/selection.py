"""Selection algorithms: the order in which queued executions are considered.

A selection is one small class with a ``name`` and either ``key(p)`` — a sort key
(smaller first) that does not change while ``p`` is queued — or ``order(pending, now)``,
which returns the pending executions best first. With ``key`` the decider keeps its
queue sorted as executions arrive (O(log n) each) instead of sorting on every cycle;
``order`` is for policies that must look at the whole queue or at ``now``.
``Pending.expected_s`` (from the profile store) and ``Pending.deadline`` (unix seconds)
are there for policies that need them.
"""

from __future__ import annotations

import abc
from bisect import insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from odop.plugins import SELECTIONS


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
    expected_bytes: int | None = None
    """Peak memory its task's past executions reached (the profile's estimate)."""
    seq: int = field(default=0, compare=False)


class Selection(abc.ABC):
    """Contract: define ``key`` or override ``order``; every execution is tried, none dropped.

    ``order`` returns the executions in the order they should be tried; by default it
    sorts by ``key`` (stable: equals keep submission order). A selection that overrides
    ``order`` is asked on every cycle; one that only defines ``key`` is not asked at all."""

    name: str

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.key is Selection.key and cls.order is Selection.order:
            raise TypeError(f"selection {cls.__name__} must define key() or order()")

    def key(self, p: Pending) -> Any:
        """Sort key of ``p``, smaller first; it must not change while ``p`` is queued."""
        raise NotImplementedError

    def order(self, pending: Sequence[Pending], now: float) -> list[Pending]:
        return sorted(pending, key=self.key)

    @property
    def keyed(self) -> bool:
        """True when the queue can be kept sorted by ``key`` (``order`` is not overridden)."""
        return type(self).order is Selection.order


class Fifo(Selection):
    """First submitted, first considered."""

    name = "fifo"

    def key(self, p: Pending) -> Any:
        return 0  # all equal: submission order


class PriorityFirst(Selection):
    """Highest priority first; FIFO among equals."""

    name = "priority"

    def key(self, p: Pending) -> Any:
        return -p.priority


class ShortestFirst(Selection):
    """Shortest expected duration first (profile estimate); unknown durations last."""

    name = "shortest"

    def key(self, p: Pending) -> Any:
        return float("inf") if p.expected_s is None else p.expected_s


class EarliestDeadline(Selection):
    """Earliest deadline first; executions without a deadline after all others."""

    name = "deadline"

    def key(self, p: Pending) -> Any:
        return float("inf") if p.deadline is None else p.deadline


for _builtin in (Fifo, PriorityFirst, ShortestFirst, EarliestDeadline):
    SELECTIONS.register(_builtin)


def make_selection(name: str) -> Selection:
    """The selection registered as ``name`` (ConfigError naming the allowed ones)."""
    return SELECTIONS.get(name)()


class Queue(dict[str, Pending]):
    """Queued executions by id (a dict in submission order), also kept sorted by the
    selection's ``key`` when it has one. Removal is lazy: a removed or replaced
    execution's sort entry is skipped, and dropped when they pile up."""

    def __init__(self, selection: Selection) -> None:
        super().__init__()
        self.selection = selection
        self._sorted: list[tuple[Any, int, int, Pending]] = []
        """(key, submission seq, generation, pending); live iff the generation is current."""
        self._gen: dict[str, tuple[int, int]] = {}
        """execution -> (submission seq, generation) of its live entry."""
        self._count = 0

    def __setitem__(self, execution: str, p: Pending) -> None:
        self._count += 1
        old = self._gen.get(execution)
        seq = old[0] if old else self._count  # a replaced execution keeps its place
        super().__setitem__(execution, p)
        self._gen[execution] = (seq, self._count)
        if self.selection.keyed:
            insort(self._sorted, (self.selection.key(p), seq, self._count, p))

    def __delitem__(self, execution: str) -> None:
        super().__delitem__(execution)
        del self._gen[execution]

    def pop(self, execution: str, *default: Any) -> Any:
        self._gen.pop(execution, None)
        return super().pop(execution, *default)

    def popitem(self) -> tuple[str, Pending]:
        execution, p = super().popitem()
        del self._gen[execution]
        return execution, p

    def clear(self) -> None:
        super().clear()
        self._gen.clear()
        self._sorted.clear()

    def update(self, *args: Any, **kw: Any) -> None:
        for execution, p in dict(*args, **kw).items():
            self[execution] = p

    def setdefault(self, execution: str, p: Pending) -> Pending:
        if execution not in self:
            self[execution] = p
        return self[execution]

    def resort(self) -> None:
        """Rebuild the sorted entries: call it when an input of ``key`` changed."""
        items = list(self.items())
        self.clear()
        for execution, p in items:
            self[execution] = p

    def ordered(self, now: float) -> Iterable[Pending]:
        """The queue in the selection's order, lazily where the selection has a key."""
        if not self.selection.keyed:
            return self.selection.order(list(self.values()), now)
        self._compact()
        gen = self._gen
        return (e[3] for e in tuple(self._sorted) if gen.get(e[3].execution, (0, 0))[1] == e[2])

    def _compact(self) -> None:
        entries, gen = self._sorted, self._gen
        head = 0
        while head < len(entries) and gen.get(entries[head][3].execution, (0, 0))[1] != \
                entries[head][2]:
            head += 1
        if head:
            del entries[:head]
        if len(entries) > 2 * len(self) + 64:
            self._sorted = [e for e in entries if gen.get(e[3].execution, (0, 0))[1] == e[2]]
