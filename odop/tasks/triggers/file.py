"""``FileTrigger``: a file matching a glob appears (``created``) or changes (``changed``).

A file is identified by its absolute path and its signature ``(mtime_ns, size)``; the
signature of each file already submitted is persisted, so after a restart only files
that are new or changed since are submitted. With inotify the folder's CLOSE_WRITE and
MOVED_TO events are used (a file is submitted once its writer closed it, or once it was
renamed into place); patterns with wildcards in folder names, and systems without
inotify, fall back to scanning with ``os.scandir``/``glob`` on every poll (skipped
while the folder's mtime is unchanged, when only ``created`` counts). ``settle_s``
additionally requires the signature to stay unchanged that long before submitting (set
it when writers keep files open, or in polling mode).
Submissions: ``{"path": "/abs/path/file"}``.
"""

from __future__ import annotations

import glob
import os
import stat
import time
from collections.abc import Mapping
from typing import Any

from odop.errors import SpecError
from odop.plugins import TRIGGERS
from odop.tasks.triggers.base import TriggerState, WatchingTrigger
from odop.tasks.triggers.inotify import (
    IN_CLOSE_WRITE,
    IN_DELETE,
    IN_ISDIR,
    IN_MOVED_FROM,
    IN_MOVED_TO,
    InotifyEvent,
)
from odop.tasks.triggers.spec import FILE_EVENTS, existing_option, trigger_path
from odop.tasks.triggers.watch import name_matcher, split_pattern
from odop.tasks.units import duration_field

__all__ = ["FileTrigger"]

Signature = list[int]  # [mtime_ns, size]


@TRIGGERS.register
class FileTrigger(WatchingTrigger):
    """Submits ``{"path": ...}`` for each new (or changed) file matching ``pattern``."""

    kind = "file"
    options = frozenset({"event", "events", "settle", "settle_s", "existing"})
    form = ("file (glob, optional event 'created|changed', settle, existing "
            "'skip|process')")

    @classmethod
    def normalise(cls, value: Mapping[str, Any], task: str) -> dict[str, Any]:
        raw = value.get("events", value.get("event", "created"))
        names = raw.split("|") if isinstance(raw, str) else raw
        if not isinstance(names, (list, tuple)) or not names or \
                any(n not in FILE_EVENTS for n in names):
            raise SpecError(task, "trigger.event", raw,
                            "'created', 'changed' or 'created|changed'")
        settle = value.get("settle_s", value.get("settle", 0.0))
        return {"kind": "file", "path": trigger_path(value, "file", task),
                "events": [e for e in FILE_EVENTS if e in names],
                "settle_s": duration_field(task, "trigger.settle", settle),
                "existing": existing_option(value, task)}

    @classmethod
    def build(cls, trigger: Mapping[str, Any], *, key: str, state: TriggerState,
              **common: Any) -> FileTrigger:
        return cls(key, state, trigger["path"], events=trigger["events"],
                   settle_s=trigger.get("settle_s", 0.0), **common)
    _want_dirs = False
    _mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM

    def __init__(self, key: str, state: TriggerState, pattern: str, *, base_dir: str = ".",
                 events: tuple[str, ...] | list[str] = ("created",), settle_s: float = 0.0,
                 use_inotify: bool | None = None, auto_commit: bool = True,
                 skip_before: float | None = None) -> None:
        super().__init__(key, state, auto_commit=auto_commit, skip_before=skip_before)
        self.pattern = pattern
        self.root, self.rest = split_pattern(pattern, os.path.abspath(base_dir))
        self.events = tuple(events)
        self.settle_s = float(settle_s)
        self._flat = os.sep not in self.rest and "**" not in self.rest
        self._match = name_matcher(self.rest) if self._flat else None
        self._prefix = f"{key}/{self.kind}/"
        self._done: dict[str, Signature] = {
            k[len(self._prefix):]: v for k, v in state.items(self._prefix).items()}
        self._pending: dict[str, tuple[Signature, float]] = {}
        self._rescan = True
        self._dir_mtime: int | None = None
        if use_inotify is not False and self._flat:
            self._start_inotify(self.root, self._mask, required=use_inotify is True)
        self._start_watching()

    def rescan(self) -> None:
        self._rescan = True
        self._dir_mtime = None

    def next_due(self, now: float) -> float | None:
        due = [since + self.settle_s for _sig, since in self._pending.values()]
        if self._watch is None:
            due.append(now + self.poll_interval_s)
        return min(due) if due else None

    def _poll(self, now: float) -> list[dict[str, Any]]:
        if self._watch is None:
            return [] if self._dir_unchanged() else self._consider_all(self._scan(), now)
        events, rescan = self._watch.drain()
        if rescan or self._rescan:
            self._rescan = False
            return self._consider_all(self._scan(), now)
        out: list[dict[str, Any]] = []
        for event in events:
            self._on_event(event, now, out)
        for path in list(self._pending):
            sig = self._stat(path)
            if sig is None:
                self._pending.pop(path, None)
            else:
                self._consider(path, sig, now, out)
        return out

    def _on_event(self, event: InotifyEvent, now: float, out: list[dict[str, Any]]) -> None:
        if self._match is None or not self._match.match(event.name):
            return
        if bool(event.mask & IN_ISDIR) != self._want_dirs:
            return
        path = os.path.join(self.root, event.name)
        if event.mask & (IN_DELETE | IN_MOVED_FROM):
            self._forget(path)
            return
        sig = self._stat(path)
        if sig is not None:
            self._consider(path, sig, now, out)

    def _dir_unchanged(self) -> bool:
        """Polling shortcut: with 'created' only, an unchanged folder mtime means no new entry.

        Only trusted for an mtime over a second old when last seen (coarse timestamps).
        """
        if not self._flat or self.events != ("created",) or self._pending:
            return False
        try:
            mtime = os.stat(self.root).st_mtime_ns
        except OSError:
            self._dir_mtime = None
            return False
        if mtime == self._dir_mtime:
            return True
        self._dir_mtime = mtime if time.time_ns() - mtime > 1_000_000_000 else None
        return False

    def _stat(self, path: str) -> Signature | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode) != self._want_dirs:
            return None
        return [st.st_mtime_ns, st.st_size] if not self._want_dirs else [0, 0]

    def _scan(self) -> dict[str, Signature]:
        """Every matching path now and its signature."""
        if self._match is not None:
            match = self._match
            try:
                entries = [e.path for e in os.scandir(self.root) if match.match(e.name)]
            except (FileNotFoundError, NotADirectoryError):
                entries = []
        else:
            entries = glob.glob(os.path.join(self.root, self.rest), recursive=True)
        found = {}
        for path in entries:
            sig = self._stat(path)
            if sig is not None:
                found[path] = sig
        return found

    def _consider_all(self, found: dict[str, Signature], now: float) -> list[dict[str, Any]]:
        for path in [p for p in self._done if p not in found]:
            self._forget(path)
        for path in [p for p in self._pending if p not in found]:
            self._pending.pop(path)
        out: list[dict[str, Any]] = []
        for path in sorted(found):
            self._consider(path, found[path], now, out)
        return out

    def _first_look(self, before: float) -> None:
        """Record what matches now and was last modified before ``before`` as seen."""
        before_ns = int(before * 1e9)
        for path, sig in self._scan().items():
            if path not in self._done and self._mtime_ns(path, sig) < before_ns:
                self._record(path, sig)
        self._first_look_done()

    def _mtime_ns(self, path: str, sig: Signature) -> int:
        if not self._want_dirs:
            return sig[0]
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return 0

    def _consider(self, path: str, sig: Signature, now: float,
                  out: list[dict[str, Any]]) -> None:
        prev = self._done.get(path)
        if prev == sig:
            self._pending.pop(path, None)
            return
        event = "created" if prev is None else "changed"
        if event not in self.events:
            if prev is None:  # a baseline: later changes of this file are what counts
                self._record(path, sig)
            return
        if self.settle_s > 0:
            pending = self._pending.get(path)
            if pending is None or pending[0] != sig:
                self._pending[path] = (sig, now)
                return
            if now - pending[1] < self.settle_s:
                return
        self._pending.pop(path, None)
        self._record(path, sig)
        out.append({"path": path})

    def _record(self, path: str, sig: Signature) -> None:
        self._done[path] = sig
        self._stage(self._prefix + path, sig)

    def _forget(self, path: str) -> None:
        self._pending.pop(path, None)
        if self._done.pop(path, None) is not None:
            self._unstage(self._prefix + path)

