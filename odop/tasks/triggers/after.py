"""``after``: run this task after each completion of another, with the same arguments.

There is no watcher: the scheduler submits the task itself when the other task's
execution is done (the spec lists that task in ``depends_on`` too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odop.plugins import TRIGGERS
from odop.tasks.triggers.spec import task_name

__all__ = ["AfterTrigger"]


@TRIGGERS.register
class AfterTrigger:
    """The ``after`` kind: checked here, acted on by the scheduler (no watcher)."""

    kind = "after"
    options = frozenset({"task"})
    form = "after (task name)"

    @classmethod
    def normalise(cls, value: Mapping[str, Any], task: str) -> dict[str, Any]:
        return {"kind": "after", "task": task_name(value.get("after", value.get("task")), task)}

    @classmethod
    def build(cls, trigger: Mapping[str, Any], **_: Any) -> None:
        return None
