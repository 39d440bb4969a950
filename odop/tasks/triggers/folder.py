"""``FolderTrigger``: a folder matching a glob appears (``out/run_*``).

Submissions: ``{"path": "/abs/path/folder"}``, once per folder (persisted across
restarts; a folder deleted and created again counts as new).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odop.plugins import TRIGGERS
from odop.tasks.triggers.base import TriggerState
from odop.tasks.triggers.file import FileTrigger
from odop.tasks.triggers.inotify import IN_CREATE, IN_DELETE, IN_MOVED_FROM, IN_MOVED_TO
from odop.tasks.triggers.spec import existing_option, trigger_path

__all__ = ["FolderTrigger"]


@TRIGGERS.register
class FolderTrigger(FileTrigger):
    """Submits ``{"path": ...}`` for each new folder matching ``pattern``."""

    kind = "folder"
    options = frozenset({"existing"})
    form = "folder (glob, existing)"

    @classmethod
    def normalise(cls, value: Mapping[str, Any], task: str) -> dict[str, Any]:
        return {"kind": "folder", "path": trigger_path(value, "folder", task),
                "existing": existing_option(value, task)}

    @classmethod
    def build(cls, trigger: Mapping[str, Any], *, key: str, state: TriggerState,
              **common: Any) -> FolderTrigger:
        return cls(key, state, trigger["path"], **common)
    _want_dirs = True
    _mask = IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM

    def __init__(self, key: str, state: TriggerState, pattern: str, *, base_dir: str = ".",
                 use_inotify: bool | None = None, auto_commit: bool = True,
                 skip_before: float | None = None) -> None:
        super().__init__(key, state, pattern, base_dir=base_dir, events=("created",),
                         use_inotify=use_inotify, auto_commit=auto_commit,
                         skip_before=skip_before)
