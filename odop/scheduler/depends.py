"""What ``depends_on`` means for in-situ work, kept as an index the cycle asks in O(1).

An execution of task ``b`` with ``depends_on = ["a"]`` waits for the executions of ``a``
with the same arguments (the same snapshot, the same line) that were submitted before it
and are not over yet; it is skipped, with the reason, once one of them failed for good
(failed with no retry left, cancelled or skipped). When no execution of ``a`` with those
arguments was submitted before it, ``b`` runs: a dependency orders work on the same
input, it does not create work.

The index holds, by (task, arguments), the executions that are not over and those that
failed for good; executions that are done are forgotten. It learns of submissions from
the decider (``added``), of every state change from the run's store (``changed``, called
by :class:`ObservedStore` once the change is written), and is rebuilt from the store
after a scheduler restart (``load``). Submission order is the order of ``added`` calls,
which after a restart is the store's (submission time, then row).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from odop.scheduler.selection import Pending
from odop.store.executions import RunStore
from odop.store.states import ExecState

Key = tuple[str, str]
"""(task, its arguments in canonical JSON)."""

NOT_DONE = tuple(s for s in ExecState if s is not ExecState.DONE)
"""The states ``Dependencies.load`` reads back from the store."""
_ENDED = {"failed": "failed", "cancelled": "was cancelled", "skipped": "was skipped"}


class Dependencies:
    """Executions by (task, arguments): open ones, and those that failed for good."""

    def __init__(self) -> None:
        self._seq = 0
        self._known: dict[str, tuple[Key, int]] = {}
        """execution -> (key, submission sequence number), for those not done."""
        self._open: dict[Key, dict[str, int]] = {}
        """Executions not over (queued, placed, running, paused, held): execution -> seq."""
        self._ended: dict[Key, dict[str, tuple[int, str]]] = {}
        """Executions over without success: execution -> (seq, state)."""
        self.doomed: dict[str, str] = {}
        """Queued executions found by the cycle to depend on one that failed for good, with
        why; the service skips them (``take_doomed``)."""

    def added(self, execution: str, task: str, args: Mapping[str, Any]) -> None:
        """Note a submission (again: ignored, it keeps its place)."""
        if execution in self._known:
            return
        self._seq += 1
        key = (task, canonical(args))
        self._known[execution] = (key, self._seq)
        self._open.setdefault(key, {})[execution] = self._seq

    def changed(self, execution: str, state: ExecState) -> None:
        """Note a state change written to the store."""
        known = self._known.get(execution)
        if known is None:
            return
        key, seq = known
        if not state.terminal:  # also a failed execution queued again for a retry
            if _drop(self._ended, key, execution):
                self._open.setdefault(key, {})[execution] = seq
            return
        _drop(self._open, key, execution)
        if state is ExecState.DONE:
            del self._known[execution]
        else:
            self._ended.setdefault(key, {})[execution] = (seq, state.value)

    def load(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild from the store's executions that are not done, in submission order."""
        for row in rows:
            self.added(row["id"], row["task"], row["args"])
            self.changed(row["id"], ExecState(row["state"]))

    def waits(self, p: Pending, depends_on: Iterable[str]) -> bool:
        """True when ``p`` may not start now: an execution it depends on is not over, or
        one failed for good (then ``p`` is also put in ``doomed``). On the cycle's path:
        look-ups only."""
        known = self._known.get(p.execution)
        if known is None:
            return False
        (_, args), seq = known
        for task in depends_on:
            key = (task, args)
            if key in self._ended and self._doom(p.execution, key, seq):
                return True
            waiting = self._open.get(key)
            if waiting:
                for before in waiting.values():
                    if before < seq:
                        return True
        return False

    def _doom(self, execution: str, key: Key, seq: int) -> bool:
        """Put ``execution`` in ``doomed`` if an execution under ``key`` submitted before
        it (``seq``) failed for good; True if so."""
        for other, (before, state) in self._ended[key].items():
            if before < seq:
                self.doomed[execution] = (f"depends on {key[0]}: its execution {other} with "
                                          f"the same arguments {_ENDED[state]}")
                return True
        return False

    def take_doomed(self) -> dict[str, str]:
        """The doomed executions found since the last call, with why."""
        doomed, self.doomed = self.doomed, {}
        return doomed


def canonical(args: Mapping[str, Any]) -> str:
    """Arguments as canonical JSON: equal for equal arguments whatever their order."""
    return json.dumps(args, sort_keys=True, separators=(",", ":"), default=repr)


def _drop(index: dict[Key, dict[str, Any]], key: Key, execution: str) -> bool:
    """Remove ``execution`` under ``key`` (and the key once empty); True if it was there."""
    entries = index.get(key)
    if entries is None or entries.pop(execution, None) is None:
        return False
    if not entries:
        del index[key]
    return True


class ObservedStore(RunStore):
    """The run's store, telling ``listener`` of every state change once it is written."""

    def __init__(self, path: Path | str,
                 listener: Callable[[str, ExecState], None] | None = None) -> None:
        super().__init__(path)
        self.listener = listener

    def transition(self, execution: str, new: ExecState, **kw: Any) -> ExecState:
        old = super().transition(execution, new, **kw)
        if self.listener is not None:
            self.listener(execution, new)
        return old
