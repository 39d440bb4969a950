"""Validation and normalisation of a task's ``trigger`` field.

User forms (spec files and decorator kwargs) and their normalised dicts:

- ``{"file": "snapshots/*.npy", "event": "created|changed", "settle": "0s"}``
  -> ``{"kind": "file", "path": ..., "events": ["created", "changed"], "settle_s": 0.0,
  "existing": "skip"}``
- ``{"folder": "out/run_*"}`` -> ``{"kind": "folder", "path": "out/run_*", "existing": "skip"}``
- ``{"line": "log.txt"}`` -> ``{"kind": "line", "path": "log.txt", "existing": "skip"}``
- ``{"every": "30s"}`` -> ``{"kind": "every", "period_s": 30.0}``
- ``{"after": "reduce"}`` -> ``{"kind": "after", "task": "reduce"}`` (the scheduler submits
  this task each time ``reduce`` completes; the spec also lists it in ``depends_on``).

``existing`` (file, folder, line): ``"skip"`` (the default: files and lines present
before the run started are not new) or ``"process"`` (they are submitted too).

A normalised dict is accepted again unchanged, so normalising is idempotent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from odop.errors import SpecError
from odop.plugins import TRIGGERS

__all__ = ["EXISTING", "FILE_EVENTS", "existing_option", "normalize_trigger", "task_name",
           "trigger_path"]

FILE_EVENTS = ("created", "changed")
EXISTING = ("skip", "process")
"""What a file, folder or line trigger does with what was there before the run started."""
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def normalize_trigger(value: object, task: str) -> dict[str, Any] | None:
    """The normalised trigger dict (plain JSON types) or None; SpecError if invalid. Each
    kind is a class of the TRIGGERS registry, which checks its own options."""
    if value is None:
        return None
    forms = "a table with one of: " + ", ".join(cls.form for _, cls in TRIGGERS.items())
    if not isinstance(value, Mapping) or not value:
        raise SpecError(task, "trigger", value, forms)
    kinds = [k for k in TRIGGERS.names() if k in value]
    if "kind" in value:
        kind = value["kind"]
        if kind not in TRIGGERS:
            raise SpecError(task, "trigger.kind", kind, " | ".join(TRIGGERS.names()))
    elif len(kinds) == 1:
        kind = kinds[0]
    else:
        raise SpecError(task, "trigger", dict(value), f"exactly one kind key; {forms}")
    cls = TRIGGERS.get(kind)
    allowed = {"kind", "path", kind} | set(cls.options)
    for key in value:
        if key not in allowed:
            raise SpecError(task, f"trigger.{key}", value[key],
                            f"keys of a {kind!r} trigger: {', '.join(sorted(allowed))}")
    return dict(cls.normalise(value, task))


def trigger_path(value: Mapping[str, Any], kind: str, task: str) -> str:
    """The path or glob of a trigger (under its kind's key, or ``path``)."""
    path = value.get(kind, value.get("path"))
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise SpecError(task, f"trigger.{kind}", path, "a non-empty path or glob pattern")
    return path


def existing_option(value: Mapping[str, Any], task: str) -> str:
    """A trigger's ``existing`` option: skip (the default) or process."""
    raw = value.get("existing", "skip")
    if not isinstance(raw, str) or raw not in EXISTING:
        raise SpecError(task, "trigger.existing", raw,
                        "'skip' (the default: files and lines present before the run started "
                        "are not new) or 'process' (submit them too)")
    return raw


def task_name(value: Any, task: str) -> str:
    """Another task's name, as an ``after`` trigger names it."""
    if not isinstance(value, str) or not _TASK_NAME.match(value):
        raise SpecError(task, "trigger.after", value, "the name of another task")
    if value == task:
        raise SpecError(task, "trigger.after", value, "another task's name, not the task itself")
    return value
