"""Execution states and the transitions allowed between them."""

from __future__ import annotations

import enum


class ExecState(str, enum.Enum):
    """Life cycle of one execution of a task."""

    QUEUED = "queued"
    """Waiting for cores (also after a retry or a requeueing preemption: not a failure)."""
    PLACED = "placed"
    """Cores granted, start command sent, engine has not confirmed yet."""
    RUNNING = "running"
    """The engine started the process tree."""
    PAUSED = "paused"
    """Stopped with SIGSTOP to give a core back; holds no grant; resumes later."""
    DONE = "done"
    """Exited with status 0."""
    FAILED = "failed"
    """Exited non-zero, was killed (time limit, memory, lost node) and has no retry left."""
    CANCELLED = "cancelled"
    """Withdrawn by a user or by the end of the simulation before it could run."""
    SKIPPED = "skipped"
    """Not run by decision (e.g. a dependency failed): not a failure of its own."""

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


USER_CANCEL = "cancelled by user"
"""The reason a user's cancel (odop cancel) records: the one cancel that is not a loss."""

TERMINAL = frozenset({ExecState.DONE, ExecState.FAILED, ExecState.CANCELLED, ExecState.SKIPPED})

_S = ExecState
ALLOWED: dict[ExecState, frozenset[ExecState]] = {
    _S.QUEUED: frozenset({_S.PLACED, _S.CANCELLED, _S.SKIPPED}),
    _S.PLACED: frozenset({_S.RUNNING, _S.PAUSED, _S.QUEUED, _S.FAILED, _S.CANCELLED,
                          _S.DONE}),
    _S.RUNNING: frozenset({_S.PAUSED, _S.DONE, _S.FAILED, _S.CANCELLED, _S.QUEUED}),
    _S.PAUSED: frozenset({_S.RUNNING, _S.QUEUED, _S.DONE, _S.FAILED, _S.CANCELLED}),
    _S.FAILED: frozenset({_S.QUEUED}),
    _S.DONE: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.SKIPPED: frozenset(),
}
