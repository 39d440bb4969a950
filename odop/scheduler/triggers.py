"""The scheduler's triggers: file, folder, line and periodic watchers of the run's tasks.

Each watcher's consumed state (files seen, line offsets, last period) lives in the run's
database and is committed only after the executions it produced are queued there, so a
scheduler killed between the two delivers them again rather than losing them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from odop.tasks.triggers import SQLiteTriggerState, Trigger, make_trigger

log = logging.getLogger("odop.scheduler")


class TriggerSet:
    """One watcher per task that declares a watching trigger."""

    def __init__(self, db_path: str, base_dir: str | None = None) -> None:
        self.state = SQLiteTriggerState(db_path)
        self.base_dir = base_dir or os.getcwd()
        self.watchers: dict[str, Trigger] = {}
        self._specs: dict[str, Any] = {}

    def update(self, specs: Mapping[str, Mapping[str, Any]]) -> None:
        """Start watchers for new or changed trigger declarations."""
        for name, spec in specs.items():
            trigger = spec.get("trigger")
            if not trigger or self._specs.get(name) == trigger:
                continue
            old = self.watchers.pop(name, None)
            if old is not None:
                old.close()
            self._specs[name] = trigger
            try:
                watcher = make_trigger(trigger, key=name, state=self.state,
                                       base_dir=self.base_dir, auto_commit=False)
            except (OSError, ValueError) as exc:
                log.warning("task %s: trigger %s not started: %s", name, trigger, exc)
                continue
            if watcher is not None:
                self.watchers[name] = watcher

    def fds(self) -> dict[int, str]:
        """Readable descriptors, each with the task whose watcher owns it."""
        return {fd: name for name, w in self.watchers.items() if (fd := w.fileno()) is not None}

    def timeout_s(self, now: float, ceiling: float) -> float:
        """Seconds until some watcher must be polled, at most ``ceiling``."""
        dues = [d for w in self.watchers.values() if (d := _due(w, now)) is not None]
        return max(0.0, min([ceiling, *(d - now for d in dues)]))

    def poll(self, now: float, ready: set[str]) -> list[tuple[Trigger, str, dict[str, Any]]]:
        """New submissions of the watchers that are ready or due, as (watcher, task, kwargs);
        call ``watcher.commit()`` once they are queued."""
        out = []
        for name, watcher in self.watchers.items():
            due = _due(watcher, now)
            if name in ready or (due is not None and due <= now):
                try:
                    out += [(watcher, name, kwargs) for kwargs in watcher.poll(now)]
                except OSError as exc:
                    log.warning("task %s: trigger poll failed: %s", name, exc)
        return out

    def close(self) -> None:
        for watcher in self.watchers.values():
            watcher.close()


def _due(watcher: Trigger, now: float) -> float | None:
    """When ``watcher`` must be polled: at once if it never was (what appeared before it
    started, files written or lines appended, is found by its first poll; no event may
    ever come to wake it), else when it says."""
    return watcher.next_due(now) if watcher.polled else now
