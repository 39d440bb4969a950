"""Triggers: what submits a task without an explicit ``odop.submit`` call.

``make_trigger(spec.trigger, key=spec.name, state=...)`` builds the trigger of a
normalised trigger dict (see ``odop.tasks.triggers.spec``), through the kind's class in
the ``odop.plugins.TRIGGERS`` registry; the contract every kind follows is in
``odop.tasks.triggers.base``. ``after`` triggers have no watcher: the scheduler submits
the task when the other task completes (it is in ``depends_on``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odop.plugins import TRIGGERS
from odop.tasks.triggers.after import AfterTrigger
from odop.tasks.triggers.base import MemoryTriggerState, Trigger, TriggerState
from odop.tasks.triggers.every import EveryTrigger
from odop.tasks.triggers.file import FileTrigger
from odop.tasks.triggers.folder import FolderTrigger
from odop.tasks.triggers.line import LineTrigger, note_start
from odop.tasks.triggers.spec import EXISTING, FILE_EVENTS, normalize_trigger
from odop.tasks.triggers.state import SQLiteTriggerState

__all__ = [
    "CLOCK_SLACK_S", "EXISTING", "FILE_EVENTS", "TRIGGERS", "AfterTrigger", "EveryTrigger",
    "FileTrigger", "FolderTrigger", "LineTrigger", "MemoryTriggerState", "SQLiteTriggerState",
    "Trigger", "TriggerState", "make_trigger", "normalize_trigger", "note_start",
]

CLOCK_SLACK_S = 1.0
"""A file or log modified less than this before the run started counts as new: file
systems stamp times coarsely, and a shared one with its own clock (seconds)."""


def make_trigger(trigger: Mapping[str, Any], *, key: str, state: TriggerState,
                 base_dir: str = ".", use_inotify: bool | None = None,
                 auto_commit: bool = True, started: float | None = None) -> Trigger | None:
    """The watcher of a normalised trigger dict, or None for ``after`` (scheduler-side).

    ``key`` (usually the task name) prefixes its persisted state; relative paths are
    taken from ``base_dir``; ``use_inotify`` None = when available, False = polling.
    ``started``: when the run started (unix seconds); with ``existing = "skip"`` (the
    default) what a file, folder or line trigger finds at its first look that was last
    modified before then is not new. None: everything it finds is new.
    """
    skip = started is not None and trigger.get("existing", "skip") == "skip"
    return TRIGGERS.get(trigger["kind"]).build(
        trigger, key=key, state=state, auto_commit=auto_commit, base_dir=base_dir,
        use_inotify=use_inotify,
        skip_before=started - CLOCK_SLACK_S if skip and started is not None else None)
