"""The trigger contract and the state interface triggers persist through.

A trigger watches something (files, a folder, a log file, the clock) and turns what it
sees into submissions: ``poll(now)`` returns one keyword-argument dict per new task
instance (``{"path": "/abs/file"}``, ``{"line": ..., "path": ..., "lineno": n}``, ``{}``).

A kind is a class of the ``odop.plugins.TRIGGERS`` registry; it declares ``kind`` (the
key users write), ``options`` (its other keys), ``form`` (one phrase for error messages),
``normalise(value, task)`` (the user's table, checked, as a plain dict with ``kind``)
and ``build(trigger, key=, state=, **common)`` (the watcher of a normalised dict, or
None when the scheduler itself submits, as for ``after``). ``common`` holds
``auto_commit``, ``base_dir``, ``use_inotify`` and ``skip_before``: a kind takes what it
uses. A new kind is one module with one class and one ``TRIGGERS.register`` line.

The scheduler drives it:

- ``fileno()``: a descriptor that becomes readable when ``poll`` has work (inotify), for
  a zmq/select poller; ``None`` when the trigger must be polled by time;
- ``next_due(now)``: the wall time (s) at which to call ``poll`` at the latest, or None;
- ``poll(now)``: never blocks, never raises for a missing path (it waits for it);
- ``commit()``: persists what the last polls consumed. With ``auto_commit`` (default)
  ``poll`` commits before it returns; without it the caller commits once the submissions
  are queued durably, so a crash in between re-delivers rather than loses them.

What was consumed (processed files with their (mtime_ns, size), line offsets, the last
period) lives in a ``TriggerState`` under keys prefixed by the trigger's ``key``, so a
restarted trigger does not submit the same thing twice.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

__all__ = ["Trigger", "TriggerState", "MemoryTriggerState"]


@runtime_checkable
class TriggerState(Protocol):
    """Durable JSON-able values by string key (one transaction per ``update``)."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value under ``key`` or ``default``."""

    def items(self, prefix: str) -> dict[str, Any]:
        """Every key starting with ``prefix`` and its value."""

    def update(self, values: Mapping[str, Any], delete: Iterable[str] = ()) -> None:
        """Set ``values`` and remove ``delete`` keys, atomically."""


class MemoryTriggerState:
    """A TriggerState in a dict (tests; runs that need no restart)."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            return self._data.get(key, default)

    def items(self, prefix: str) -> dict[str, Any]:
        with self._lock:
            return {k: v for k, v in self._data.items() if k.startswith(prefix)}

    def update(self, values: Mapping[str, Any], delete: Iterable[str] = ()) -> None:
        with self._lock:
            self._data.update(values)
            for key in delete:
                self._data.pop(key, None)


class Trigger(ABC):
    """Base of every trigger kind: staged state, commit, the polling contract."""

    kind: ClassVar[str] = ""
    """The key users write (``{"file": ...}``) and the name the registry knows it by."""
    #: seconds between polls when there is no descriptor to wait on
    poll_interval_s: float = 0.5

    def __init__(self, key: str, state: TriggerState, *, auto_commit: bool = True) -> None:
        self.key = key
        self.state = state
        self.auto_commit = auto_commit
        self._staged: dict[str, Any] = {}
        self._deleted: set[str] = set()
        self.polled = False
        """Whether ``poll`` ran at least once."""

    def fileno(self) -> int | None:
        """A descriptor readable when there is something to poll, or None."""
        return None

    def next_due(self, now: float) -> float | None:
        """Wall time (s) by which ``poll`` should run even without descriptor activity."""
        return now + self.poll_interval_s if self.fileno() is None else None

    def poll(self, now: float) -> list[dict[str, Any]]:
        """The keyword arguments of each new submission since the last poll."""
        submissions = self._poll(now)
        self.polled = True
        if self.auto_commit:
            self.commit()
        return submissions

    options: ClassVar[frozenset[str]] = frozenset()
    form: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def normalise(cls, value: Mapping[str, Any], task: str) -> dict[str, Any]:
        """The user's trigger table, checked, as a plain dict with ``kind``."""

    @classmethod
    @abstractmethod
    def build(cls, trigger: Mapping[str, Any], *, key: str, state: TriggerState,
              **common: Any) -> Trigger | None:
        """The watcher of a normalised trigger dict."""

    @abstractmethod
    def _poll(self, now: float) -> list[dict[str, Any]]:
        """Find new work, stage the state it consumes (``_stage``/``_unstage``)."""

    def rescan(self) -> None:  # noqa: B027 (a hook: most triggers read all at every poll)
        """Make the next poll look at everything it watches, not only at what its events
        name (at the simulation's end: writes on other nodes raise no local event)."""

    def commit(self) -> None:
        """Persist the state staged since the last commit."""
        if self._staged or self._deleted:
            self.state.update(self._staged, self._deleted)
            self._staged, self._deleted = {}, set()

    def close(self) -> None:
        """Release descriptors; staged state is committed first."""
        self.commit()

    def _stage(self, key: str, value: Any) -> None:
        self._staged[key] = value
        self._deleted.discard(key)

    def _unstage(self, key: str) -> None:
        self._staged.pop(key, None)
        self._deleted.add(key)

    def __enter__(self) -> Trigger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WatchingTrigger(Trigger):
    """A trigger driven by inotify events on one folder when it can be, else by polling.

    ``skip_before`` (unix seconds, or None): when the trigger is made, its first look in
    a run records what was last modified before then (files, a log's lines) as seen, not
    new; what appears or changes after the first look is new whatever its time. That the
    first look happened is persisted, so a restarted trigger does not look again.
    Subclasses call ``_start_watching()`` at the end of their ``__init__``.
    """

    def __init__(self, key: str, state: TriggerState, *, auto_commit: bool = True,
                 skip_before: float | None = None) -> None:
        super().__init__(key, state, auto_commit=auto_commit)
        self._inotify: Any = None
        self._watch: Any = None
        self._looked_key = f"{key}/{self.kind}-looked"
        self.skip_before = None if state.get(self._looked_key) else skip_before
        """Unix seconds, until the first look is over; then None."""

    def _start_watching(self) -> None:
        """Take the first look (with ``skip_before``), once the watch is in place."""
        if self.skip_before is not None:
            self._first_look(self.skip_before)

    @abstractmethod
    def _first_look(self, before: float) -> None:
        """Record what was last modified before ``before`` (unix s) as seen; then call
        ``_first_look_done``."""

    def _first_look_done(self) -> None:
        """From now on everything this trigger sees is new."""
        if self.skip_before is not None:
            self.skip_before = None
            self._stage(self._looked_key, True)

    def _start_inotify(self, folder: str, mask: int, *, required: bool) -> None:
        """Watch ``folder`` for ``mask`` events; fall back to polling unless ``required``."""
        from odop.tasks.triggers.inotify import Inotify
        from odop.tasks.triggers.watch import DirWatch

        try:
            self._inotify = Inotify()
            self._watch = DirWatch(self._inotify, folder, mask)
        except OSError:
            if self._inotify is not None:
                self._inotify.close()
            self._inotify = self._watch = None
            if required:
                raise

    @property
    def uses_inotify(self) -> bool:
        """True when inotify events drive this trigger (else it scans on every poll)."""
        return self._watch is not None

    def fileno(self) -> int | None:
        return self._inotify.fileno() if self._inotify is not None else None

    def close(self) -> None:
        super().close()
        if self._inotify is not None:
            self._inotify.close()
            self._inotify = self._watch = None
