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
from odop.tasks.units import duration_field

__all__ = ["TRIGGER_KINDS", "FILE_EVENTS", "EXISTING", "normalize_trigger"]

TRIGGER_KINDS = ("file", "folder", "line", "every", "after")
FILE_EVENTS = ("created", "changed")
EXISTING = ("skip", "process")
"""What a file, folder or line trigger does with what was there before the run started."""
_OPTIONS = {
    "file": {"event", "events", "settle", "settle_s", "existing"},
    "folder": {"existing"},
    "line": {"existing"},
    "every": {"period_s"},
    "after": {"task"},
}
_TASK_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_FORMS = ("a table with one of: file (glob, optional event 'created|changed', settle, "
          "existing 'skip|process'), folder (glob, existing), line (file path, existing), "
          "every (duration), after (task name)")


def normalize_trigger(value: object, task: str) -> dict[str, Any] | None:
    """The normalised trigger dict (plain JSON types) or None; SpecError if invalid."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not value:
        raise SpecError(task, "trigger", value, _FORMS)
    kinds = [k for k in TRIGGER_KINDS if k in value]
    if "kind" in value:
        kind = value["kind"]
        if kind not in TRIGGER_KINDS:
            raise SpecError(task, "trigger.kind", kind, " | ".join(TRIGGER_KINDS))
    elif len(kinds) == 1:
        kind = kinds[0]
    else:
        raise SpecError(task, "trigger", dict(value), f"exactly one kind key; {_FORMS}")
    allowed = {"kind", "path", kind} | _OPTIONS[kind]
    for key in value:
        if key not in allowed:
            raise SpecError(task, f"trigger.{key}", value[key],
                            f"keys of a {kind!r} trigger: {', '.join(sorted(allowed))}")
    return _NORMALISERS[kind](value, task)


def _path(value: Mapping[str, Any], kind: str, task: str) -> str:
    path = value.get(kind, value.get("path"))
    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise SpecError(task, f"trigger.{kind}", path, "a non-empty path or glob pattern")
    return path




def _file(value: Mapping[str, Any], task: str) -> dict[str, Any]:
    raw = value.get("events", value.get("event", "created"))
    names = raw.split("|") if isinstance(raw, str) else raw
    if not isinstance(names, (list, tuple)) or not names:
        raise SpecError(task, "trigger.event", raw, "'created', 'changed' or 'created|changed'")
    events = []
    for name in names:
        if name not in FILE_EVENTS:
            raise SpecError(task, "trigger.event", raw, "'created', 'changed' or 'created|changed'")
        if name not in events:
            events.append(name)
    settle = value.get("settle_s", value.get("settle", 0.0))
    return {"kind": "file", "path": _path(value, "file", task),
            "events": [e for e in FILE_EVENTS if e in events],
            "settle_s": duration_field(task, "trigger.settle", settle),
            "existing": _existing(value, task)}


def _folder(value: Mapping[str, Any], task: str) -> dict[str, Any]:
    return {"kind": "folder", "path": _path(value, "folder", task),
            "existing": _existing(value, task)}


def _line(value: Mapping[str, Any], task: str) -> dict[str, Any]:
    path = _path(value, "line", task)
    if any(ch in path for ch in "*?["):
        raise SpecError(task, "trigger.line", path, "one file path, not a glob pattern")
    return {"kind": "line", "path": path, "existing": _existing(value, task)}


def _existing(value: Mapping[str, Any], task: str) -> str:
    raw = value.get("existing", "skip")
    if not isinstance(raw, str) or raw not in EXISTING:
        raise SpecError(task, "trigger.existing", raw,
                        "'skip' (the default: files and lines present before the run started "
                        "are not new) or 'process' (submit them too)")
    return raw


def _every(value: Mapping[str, Any], task: str) -> dict[str, Any]:
    raw = value.get("every", value.get("period_s"))
    return {"kind": "every", "period_s": duration_field(task, "trigger.every", raw, positive=True)}


def _after(value: Mapping[str, Any], task: str) -> dict[str, Any]:
    name = value.get("after", value.get("task"))
    if not isinstance(name, str) or not _TASK_NAME.match(name):
        raise SpecError(task, "trigger.after", name, "the name of another task")
    if name == task:
        raise SpecError(task, "trigger.after", name, "another task's name, not the task itself")
    return {"kind": "after", "task": name}


_NORMALISERS = {"file": _file, "folder": _folder, "line": _line, "every": _every, "after": _after}
