"""The scheduler's triggers: file, folder, line and periodic watchers of the run's tasks.

Each watcher's consumed state (files seen, line offsets, last period) lives in the run's
database and is committed only after the executions it produced are queued there, so a
scheduler killed between the two delivers them again rather than losing them.

Files and lines present before the run started are not new (unless a trigger says
``existing = "process"``); periodic watchers stop when the simulation ends. When a task
depends on another, the other's watcher is polled with it, and first: a file both see is
submitted to the task it depends on first (odop.scheduler.depends).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from odop.tasks.triggers import SQLiteTriggerState, Trigger, make_trigger

log = logging.getLogger("odop.scheduler")


class TriggerSet:
    """One watcher per task that declares a watching trigger.

    ``started()``: when the run started (unix seconds; None: when this set was made);
    ``sim_running()``: False once the simulation has ended."""

    def __init__(self, db_path: str, base_dir: str | None = None, *,
                 started: Callable[[], float | None] = lambda: None,
                 sim_running: Callable[[], bool] = lambda: True) -> None:
        self.state = SQLiteTriggerState(db_path)
        self.base_dir = base_dir or os.getcwd()
        self.watchers: dict[str, Trigger] = {}
        self._specs: dict[str, Any] = {}
        self._started, self._sim_running = started, sim_running
        self._made = time.time()
        self._depends: dict[str, tuple[str, ...]] = {}
        self._order: list[str] = []
        """Names of the watchers, each after those of the tasks it depends on."""

    def update(self, specs: Mapping[str, Mapping[str, Any]]) -> None:
        """Start watchers for new or changed trigger declarations."""
        for name, spec in specs.items():
            self._depends[name] = tuple(spec.get("depends_on") or ())
            trigger = spec.get("trigger")
            if not trigger or self._specs.get(name) == trigger:
                continue
            old = self.watchers.pop(name, None)
            if old is not None:
                old.close()
            self._specs[name] = trigger
            try:
                watcher = make_trigger(trigger, key=name, state=self.state,
                                       base_dir=self.base_dir, auto_commit=False,
                                       started=self._started() or self._made)
            except (OSError, ValueError) as exc:
                log.warning("task %s: trigger %s not started: %s", name, trigger, exc)
                continue
            if watcher is not None:
                self.watchers[name] = watcher
        self._order = _dependencies_first(self.watchers, self._depends)

    def fds(self) -> dict[int, str]:
        """Readable descriptors, each with the task whose watcher owns it."""
        return {fd: name for name, w in self.watchers.items() if (fd := w.fileno()) is not None}

    def timeout_s(self, now: float, ceiling: float) -> float:
        """Seconds until some watcher must be polled, at most ``ceiling``."""
        dues = [d for w in self.watchers.values()
                if self._live(w) and (d := _due(w, now)) is not None]
        return max(0.0, min([ceiling, *(d - now for d in dues)]))

    def poll(self, now: float, ready: set[str]) -> list[tuple[Trigger, str, dict[str, Any]]]:
        """New submissions of the watchers that are ready or due (and of the watchers of
        the tasks these depend on, first), as (watcher, task, kwargs); call
        ``watcher.commit()`` once they are queued."""
        wanted = {name for name, w in self.watchers.items() if self._live(w) and (
            name in ready or ((due := _due(w, now)) is not None and due <= now))}
        feeding = self._feeding(wanted)
        wanted |= feeding
        found: dict[str, list[dict[str, Any]]] = {}
        for name in self._order:
            if name in wanted:
                found[name] = self._poll(name, now)
        for name in self._order:  # once more, after their dependents: a file that came
            if name in feeding:   # between two polls is then submitted to both, in order
                found[name] += self._poll(name, now)
        return [(self.watchers[name], name, kwargs)
                for name in self._order if name in found for kwargs in found[name]]

    def _poll(self, name: str, now: float) -> list[dict[str, Any]]:
        try:
            return self.watchers[name].poll(now)
        except OSError as exc:
            log.warning("task %s: trigger poll failed: %s", name, exc)
            return []

    def _live(self, watcher: Trigger) -> bool:
        """False for a periodic watcher once the simulation has ended."""
        return watcher.kind != "every" or self._sim_running()

    def _feeding(self, names: Iterable[str]) -> set[str]:
        """The live watchers of the tasks that ``names`` depend on, transitively."""
        found: set[str] = set()
        todo = [d for name in names for d in self._depends.get(name, ())]
        while todo:
            name = todo.pop()
            watcher = self.watchers.get(name)
            if name not in found and watcher is not None and self._live(watcher):
                found.add(name)
                todo += self._depends.get(name, ())
        return found

    def close(self) -> None:
        for watcher in self.watchers.values():
            watcher.close()


def _dependencies_first(names: Iterable[str], depends: Mapping[str, Iterable[str]]) -> list[str]:
    """``names`` ordered so that each comes after the names it depends on (a cycle, which
    declarations refuse, is cut where it closes)."""
    names = list(names)
    wanted, order, done = set(names), [], set()

    def visit(name: str, path: set[str]) -> None:
        if name in done or name in path:
            return
        path.add(name)
        for dep in depends.get(name, ()):
            visit(dep, path)
        done.add(name)
        if name in wanted:
            order.append(name)

    for name in names:
        visit(name, set())
    return order


def _due(watcher: Trigger, now: float) -> float | None:
    """When ``watcher`` must be polled: at once if it never was (what appeared before it
    started, files written or lines appended, is found by its first poll; no event may
    ever come to wake it), else when it says."""
    return watcher.next_due(now) if watcher.polled else now
