"""The account of a run: every submission and what became of it.

Read from the run's durable state only (its database, the ranks' journals, the triggers'
consumed state beside what they match on disk), so it is the same whoever takes it: ``odop
run`` and ``odop.stop()`` at the end, ``odop status`` at any time. A run is whole when its
``unaccounted`` is 0: every submission is done, failed, skipped, cancelled, exported, left
queued or kept in a journal, each said with its count, and every file a trigger matched
was submitted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from odop.paths import RunPaths
from odop.store.executions import RunStore
from odop.store.states import USER_CANCEL, ExecState

COUNTED = ("failed", "skipped", "cancelled", "exported", "queued", "running", "journalled",
           "refused", "unsubmitted", "unwritten")
"""The outcomes besides done, in the order a summary names them."""
OPEN = (ExecState.PLACED.value, ExecState.RUNNING.value, ExecState.PAUSED.value)
WATCHED = ("file", "folder", "line")
"""Trigger kinds whose matches on disk are checked against what they submitted."""


@dataclass(frozen=True)
class Account:
    """Counts of a run's submissions by outcome (each execution counted once)."""

    submitted: int = 0
    """Executions the scheduler recorded."""
    origins: dict[str, int] = field(default_factory=dict)
    """Submissions by origin: ``call`` (odop.submit, odop submit), ``file trigger``, ..."""
    done: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    exported: int = 0
    """Queued executions written to a job script by ``odop export``, to run later."""
    queued: int = 0
    """Left in the queue, not run (a drain cut short; ``odop export`` can carry them)."""
    running: int = 0
    """Placed, running or paused when the account was taken: their end is not known yet."""
    journalled: int = 0
    """Submissions a rank kept in its journal that never reached the scheduler."""
    unsubmitted: int = 0
    """Files or lines a trigger matches that it never submitted."""
    unwritten: int = 0
    """Submissions that reached neither the scheduler nor a journal (counted by the ranks)."""
    refused: int = 0
    """Submissions the scheduler refused (counted by the ranks that sent them)."""
    reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    """For failed, skipped and cancelled: reason -> count."""

    @property
    def unaccounted(self) -> int:
        """Submissions whose fate no record tells: must be 0 once a run has ended."""
        return self.running + self.unsubmitted + self.unwritten

    @property
    def incomplete(self) -> int:
        """Work that was not run to its end: left, kept aside, or unaccounted."""
        by_odop = sum(n for why, n in self.reasons.get("cancelled", {}).items()
                      if USER_CANCEL not in why)
        return self.queued + self.journalled + self.refused + by_odop + self.unaccounted

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "unaccounted": self.unaccounted}

    def line(self) -> str:
        """One line for people: the counts that are not 0."""
        parts = [f"{self.submitted} submitted", f"{self.done} done"]
        for name in COUNTED:
            if n := getattr(self, name):
                parts.append(f"{n} {name}")
        parts.append(f"{self.unaccounted} unaccounted")
        return ", ".join(parts)


def take(paths: RunPaths, *, held: Iterable[str] | None = None, unsent: int = 0,
         unwritten: int = 0, refused: int = 0, now: float | None = None) -> Account:
    """The account of the run in ``paths`` as its files show it now. At ``odop.stop()``
    the ranks know exactly what they kept that the scheduler did not confirm (their
    journals may not all be on this node): the execution ids they ``held`` (recorded ones
    are not counted twice), those they never sent (``unsent``), ``unwritten`` and
    ``refused``; without them the journals this node sees are read."""
    if not paths.db.exists():
        return Account(journalled=len(set(held or ())) + unsent, unwritten=unwritten,
                       refused=refused)
    store = RunStore(paths.db, readonly=True)
    try:
        rows = store.conn.execute(
            "SELECT id, task, state, origin, reason FROM executions").fetchall()
        meta, specs, consumed = store.meta(), store.tasks(), _trigger_state(store)
    finally:
        store.close()
    states = Counter(r["state"] for r in rows)
    recorded = {r["id"] for r in rows}
    exported = set(meta.get("exported") or ())
    left = sum(1 for r in rows if r["state"] == "queued" and r["id"] not in exported)
    reasons: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["state"] in ("failed", "skipped", "cancelled"):
            why = reasons.setdefault(r["state"], {})
            why[r["reason"] or "-"] = why.get(r["reason"] or "-", 0) + 1
    return Account(
        submitted=len(rows), origins=dict(Counter(_origin(r["origin"]) for r in rows)),
        done=states["done"], failed=states["failed"], skipped=states["skipped"],
        cancelled=states["cancelled"], exported=states["queued"] - left, queued=left,
        running=sum(states[s] for s in OPEN), reasons=reasons, unwritten=unwritten,
        refused=refused, journalled=(len(set(held) - recorded) + unsent if held is not None
                                     else in_journals(paths, recorded)),
        unsubmitted=unsubmitted(consumed, specs, meta, time.time() if now is None else now))


def _trigger_state(store: RunStore) -> dict[str, Any]:
    """What the run's triggers consumed (their table exists once one was started)."""
    try:
        rows = store.conn.execute("SELECT key, value FROM trigger_state").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {r["key"]: json.loads(r["value"]) for r in rows}


def _origin(origin: str | None) -> str:
    """``rank 3`` and ``client`` are calls; ``after <id>`` is a chained task."""
    origin = origin or "call"
    if origin.startswith(("rank ", "client")):
        return "call"
    return origin.split(" ", 1)[0] if origin.startswith("after ") else origin


def in_journals(paths: RunPaths, recorded: set[str]) -> int:
    """Submissions in the ranks' journals that the run's database does not hold: those
    in the run folder and those gone on in this node's fallback folder."""
    from odop.launch.journal import pending_in_run

    ids = {msg.get("execution") for msg in pending_in_run(paths.root)}
    return len(ids - recorded)


def unsubmitted(consumed: dict[str, Any], specs: dict[str, dict[str, Any]],
                meta: dict[str, Any], now: float) -> int:
    """What the run's file, folder and line triggers match now but never submitted, read
    through each trigger's own logic against its consumed state (nothing is committed)."""
    from odop.tasks.triggers import MemoryTriggerState, make_trigger

    base = str(meta.get("cwd") or os.getcwd())
    state = MemoryTriggerState()  # a copy: the polls below must change nothing
    state.update(consumed)
    count = 0
    for name, spec in specs.items():
        trigger = spec.get("trigger") or {}
        if trigger.get("kind") not in WATCHED:
            continue
        watcher = make_trigger(trigger, key=name, state=state, base_dir=base,
                               use_inotify=False, auto_commit=False,
                               started=meta.get("started"))  # as the scheduler reads it
        if watcher is None:
            continue
        try:  # a second poll far ahead counts files still settling
            count += len(watcher.poll(now)) + len(watcher.poll(now + 1e6))
        except OSError:
            pass
        finally:
            watcher.close()
    return count
