"""Parsers for the user-facing fields of a task declaration (used by ``spec.py``).

Each parser reads a few fields of the raw mapping and returns ``TaskSpec`` keyword
arguments, or raises ``SpecError`` naming the task, the field, the value and what is
allowed.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import shlex
import string
from collections.abc import Callable, Mapping
from typing import Any

from odop.errors import SpecError
from odop.tasks.triggers.spec import normalize_trigger
from odop.tasks.units import (
    CPUS_FORMS,
    MEMORY_FORMS,
    duration_field,
    parse_cpus,
    parse_memory,
)

KINDS = ("python", "executable", "mpi")
PREEMPT_MODES = ("pause", "repin", "requeue")
CARBON_LEVELS = ("low", "medium", "high")
USER_FIELDS = (
    "name", "kind", "function", "program", "executable", "argv", "time", "cpus", "memory",
    "threads", "gpus", "nodes", "ranks_per_node", "priority", "deadline", "depends_on",
    "max_runs", "max_retries", "retry_backoff", "io_bound", "trigger", "energy", "preempt",
    "resumable", "elastic",
)
ENERGY_KEYS = ("deferrable", "max_delay", "carbon_threshold", "price_threshold")
TASK_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
_MODULE_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_FILE_TARGET = re.compile(r"^(?P<file>.+\.py):(?P<func>[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)$")
_PLACEHOLDER = re.compile(r"^[A-Za-z_]\w*$")
_NAME_FORMS = "letters, digits, '_', '.', '-', starting with a letter or '_', <= 128 chars"

Parser = Callable[..., dict[str, Any]]


def default_energy() -> dict[str, Any]:
    """The energy policy hooks of a task that declares none."""
    return {"deferrable": False, "max_delay": None, "carbon_threshold": None,
            "price_threshold": None}


def task_name(mapping: Mapping[str, Any]) -> tuple[str, list[SpecError]]:
    """The task's name (or '?') and the errors of its name and unknown fields."""
    raw = mapping.get("name")
    errors: list[SpecError] = []
    name = raw if isinstance(raw, str) and TASK_NAME_RE.match(raw) else "?"
    if name == "?":
        errors.append(SpecError("?", "name", raw, _NAME_FORMS))
    for key in mapping:
        if key not in USER_FIELDS:
            close = difflib.get_close_matches(str(key), USER_FIELDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            errors.append(SpecError(name, str(key), mapping[key],
                                    f"{hint}known fields: {', '.join(USER_FIELDS)}"))
    return name, errors


# -- scalars ---------------------------------------------------------------------------

def _int(task: str, field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(task, field, value, f"an integer >= {minimum}")
    return value


def _count(task: str, field: str, value: object, minimum: int) -> int:
    """An integer, also written as a string of digits ('4')."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    return _int(task, field, value, minimum)


def _bool(task: str, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise SpecError(task, field, value, "true or false")
    return value


def _durations(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if m.get("time") is not None:
        out["time_s"] = duration_field(task, "time", m["time"], positive=True)
    if m.get("deadline") is not None:
        out["deadline_s"] = duration_field(task, "deadline", m["deadline"], positive=True)
    if "retry_backoff" in m:
        out["retry_backoff_s"] = duration_field(task, "retry_backoff", m["retry_backoff"],
                                           positive=False)
    return out


def _ints(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, minimum in (("gpus", 0), ("nodes", 1), ("max_retries", 0)):
        if field in m:
            out[field] = _int(task, field, m[field], minimum)
    for field in ("ranks_per_node", "max_runs"):
        if m.get(field) is not None:
            out[field] = _int(task, field, m[field], 1)
    if "priority" in m:
        if isinstance(m["priority"], bool) or not isinstance(m["priority"], int):
            raise SpecError(task, "priority", m["priority"], "an integer (higher runs first)")
        out["priority"] = m["priority"]
    return out


def _bools(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    return {f: _bool(task, f, m[f]) for f in ("io_bound", "resumable") if f in m}


def _preempt(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    if "preempt" not in m:
        return {}
    if m["preempt"] not in PREEMPT_MODES:
        raise SpecError(task, "preempt", m["preempt"], " | ".join(PREEMPT_MODES))
    return {"preempt": m["preempt"]}


# -- ranges: cpus, memory, threads --------------------------------------------------------

def _bounds(task: str, field: str, value: object) -> tuple[object, object]:
    """(min, max) raw values from a scalar, a [min, max] pair or a {min, max} table."""
    forms = "a single value, [min, max] or {min = ..., max = ...}"
    if isinstance(value, Mapping):
        extra = set(value) - {"min", "max"}
        if extra or not value:
            raise SpecError(task, field, dict(value), f"{forms}; table keys: min, max")
        return value.get("min"), value.get("max")
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise SpecError(task, field, list(value), forms)
        return value[0], value[1]
    return value, value


def _range(task: str, field: str, value: object, parse: Callable[[object], Any],
           forms: str) -> tuple[Any, Any]:
    lo_raw, hi_raw = _bounds(task, field, value)
    if lo_raw is None and hi_raw is None:
        raise SpecError(task, field, value, f"at least a min or a max; {forms}")
    parsed: list[Any] = []
    for raw in (lo_raw, hi_raw):
        if raw is None:
            parsed.append(None)
            continue
        try:
            number = parse(raw)
        except ValueError:
            raise SpecError(task, field, value, forms) from None
        if number <= 0:
            raise SpecError(task, field, value, f"values > 0; {forms}")
        parsed.append(number)
    lo, hi = parsed
    if lo is not None and hi is not None and lo > hi:
        raise SpecError(task, field, value, "min <= max")
    return lo, hi


def _resources(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if m.get("cpus") is not None:
        lo, hi = _range(task, "cpus", m["cpus"], parse_cpus, CPUS_FORMS)
        hi = lo if hi is None else hi
        out["cpus_min"], out["cpus_max"] = (min(1.0, hi) if lo is None else lo), hi
    if m.get("memory") is not None:
        out["memory_min"], out["memory_max"] = _range(task, "memory", m["memory"],
                                                      parse_memory, MEMORY_FORMS)
    if m.get("threads") is not None:
        forms = "a whole number of threads >= 1"

        def threads(raw: object) -> int:
            return _count(task, "threads", raw, 1)

        out["threads_min"], out["threads_max"] = _range(task, "threads", m["threads"],
                                                        threads, forms)
    return out


# -- what runs: kind, target, argv ------------------------------------------------------

def _kind_of(m: Mapping[str, Any]) -> str | None:
    if "kind" in m:
        return m["kind"] if m["kind"] in KINDS else None
    if "function" in m:
        return "python"
    return "executable" if ("program" in m or "executable" in m) else None


def _target(m: Mapping[str, Any], task: str, *, source: str, task_dirs: tuple[str, ...],
            executable_dirs: tuple[str, ...], **_: Any) -> dict[str, Any]:
    if "kind" in m and m["kind"] not in KINDS:
        raise SpecError(task, "kind", m["kind"], " | ".join(KINDS))
    kind = _kind_of(m)
    if "program" in m and "executable" in m:
        raise SpecError(task, "executable", m["executable"], "one of program / executable")
    program_field = "program" if "program" in m else "executable"
    if kind == "python":
        if program_field in m:
            raise SpecError(task, program_field, m[program_field],
                            "no program for a python task; use function = 'module:function'")
        if "function" not in m:
            raise SpecError(task, "function", None,
                            "'package.module:function' or 'file.py:function'")
        return {"kind": kind, "target": _function_target(task, m["function"], source, task_dirs)}
    if "function" in m:
        raise SpecError(task, "function", m["function"],
                        f"no function for a {kind or 'program'} task; use program = '...'")
    if program_field not in m:
        raise SpecError(task, "program", None,
                        "a program path or name (or function = 'module:function' for python)")
    return {"kind": kind, "target": _program_target(task, program_field, m[program_field],
                                                    source, executable_dirs)}


def _source_dir(source: str) -> str | None:
    return os.path.dirname(os.path.abspath(source)) if os.path.isfile(source) else None


def _function_target(task: str, value: object, source: str, task_dirs: tuple[str, ...]) -> str:
    allowed = "'package.module:function' or 'path/to/file.py:function'"
    if not isinstance(value, str):
        raise SpecError(task, "function", value, allowed)
    match = _FILE_TARGET.match(value)
    if match is None and _MODULE_TARGET.match(value):
        return _local_module(value, source, task_dirs)
    if match is None:
        raise SpecError(task, "function", value, allowed)
    path = os.path.expanduser(match["file"])
    if not os.path.isabs(path):
        folders = [d for d in (_source_dir(source), *task_dirs) if d]
        found = [os.path.join(d, path) for d in folders if os.path.isfile(os.path.join(d, path))]
        if not found:
            where = ", ".join(folders) or "the spec's folder"
            raise SpecError(task, "function", value, f"{allowed}; no such file in {where}")
        path = found[0]
    return f"{os.path.abspath(path)}:{match['func']}"


def _local_module(target: str, source: str, task_dirs: tuple[str, ...]) -> str:
    """A ``module:function`` whose module is a file of the task folder becomes an absolute
    file target, so workers anywhere load it without a sys.path of their own."""
    module, func = target.split(":", 1)
    relative = module.replace(".", os.sep) + ".py"
    for folder in (d for d in (_source_dir(source), *task_dirs) if d):
        if os.path.isfile(os.path.join(folder, relative)):
            return f"{os.path.abspath(os.path.join(folder, relative))}:{func}"
    return target


def _program_target(task: str, field: str, value: object, source: str,
                    executable_dirs: tuple[str, ...]) -> str:
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise SpecError(task, field, value, "a program path or name (a non-empty string)")
    path = os.path.expanduser(value.strip())
    if os.path.isabs(path):
        return os.path.normpath(path)
    if os.sep in path:
        base = _source_dir(source) or os.getcwd()
        return os.path.normpath(os.path.join(base, path))
    for folder in executable_dirs:
        candidate = os.path.join(folder, path)
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    return path  # a bare name: looked up on PATH when it runs (the loader checks it)


def _argv(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    if "argv" not in m:
        return {}
    raw = m["argv"]
    if _kind_of(m) == "python":
        raise SpecError(task, "argv", raw, "no argv for a python task (it gets keyword arguments)")
    allowed = "a list of strings or one command-line string, placeholders as {name}"
    if isinstance(raw, str):
        try:
            items: list[object] = list(shlex.split(raw))
        except ValueError as exc:
            raise SpecError(task, "argv", raw, f"{allowed} ({exc})") from None
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        raise SpecError(task, "argv", raw, allowed)
    argv = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise SpecError(task, "argv", raw, allowed)
        if isinstance(item, float) and not math.isfinite(item):
            raise SpecError(task, "argv", raw, allowed)
        text = str(item)
        _check_placeholders(task, text)
        argv.append(text)
    return {"argv": tuple(argv)}


def _check_placeholders(task: str, text: str) -> None:
    allowed = "placeholders like {path} (a name only), literal braces as {{ and }}"
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        raise SpecError(task, "argv", text, allowed) from None
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if not _PLACEHOLDER.match(field) or spec or conversion:
            raise SpecError(task, "argv", text, allowed)


# -- relations: depends_on, trigger, energy, mpi shape --------------------------------------

def _trigger(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    return {"trigger": normalize_trigger(m["trigger"], task)} if "trigger" in m else {}


def _depends(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    raw = m.get("depends_on", ())
    names = [raw] if isinstance(raw, str) else raw
    allowed = "a task name or a list of task names (not the task itself)"
    if not isinstance(names, (list, tuple)):
        raise SpecError(task, "depends_on", raw, allowed)
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not TASK_NAME_RE.match(name) or name == task:
            raise SpecError(task, "depends_on", raw, allowed)
        if name not in out:
            out.append(name)
    after = m.get("trigger")
    dep = after.get("after") if isinstance(after, Mapping) else None
    if isinstance(dep, str) and dep not in out and dep != task:
        out.append(dep)
    return {"depends_on": tuple(out)} if out else {}


def _energy(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    if m.get("energy") is None:
        return {}
    raw = m["energy"]
    if not isinstance(raw, Mapping):
        raise SpecError(task, "energy", raw, f"a table with keys {', '.join(ENERGY_KEYS)}")
    out = default_energy()
    for key, value in raw.items():
        if key not in ENERGY_KEYS:
            raise SpecError(task, f"energy.{key}", value, f"keys: {', '.join(ENERGY_KEYS)}")
    if "deferrable" in raw:
        out["deferrable"] = _bool(task, "energy.deferrable", raw["deferrable"])
    if raw.get("max_delay") is not None:
        out["max_delay"] = duration_field(task, "energy.max_delay", raw["max_delay"], positive=True)
        if not out["deferrable"]:
            raise SpecError(task, "energy.max_delay", raw["max_delay"],
                            "only with deferrable = true")
    out["carbon_threshold"] = _threshold(task, "energy.carbon_threshold",
                                         raw.get("carbon_threshold"), levels=True)
    out["price_threshold"] = _threshold(task, "energy.price_threshold",
                                        raw.get("price_threshold"), levels=False)
    return {"energy": out}


def _threshold(task: str, field: str, value: object, *, levels: bool) -> object:
    if value is None or (levels and value in CARBON_LEVELS):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value) and value >= 0:
        return float(value)
    allowed = "a number >= 0" + (" (gCO2/kWh) or low | medium | high" if levels else
                                 " (currency per MWh)")
    raise SpecError(task, field, value, allowed)


def _mpi_shape(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    if _kind_of(m) == "mpi":
        if m.get("nodes") not in (None, 1) and m.get("gpus"):
            raise SpecError(task, "gpus", m["gpus"], "0 for an mpi task on several nodes "
                            "(GPUs are granted to tasks on one node)")
        return {}
    for field in ("ranks_per_node", "nodes"):
        value = m.get(field)
        if value is not None and value != 1:
            raise SpecError(task, field, value, "only for kind = 'mpi' tasks")
    return {}


def _elastic(m: Mapping[str, Any], task: str, **_: Any) -> dict[str, Any]:
    """``elastic``: a running execution grows and shrinks within its cpus range."""
    if "elastic" not in m or not _bool(task, "elastic", m["elastic"]):
        return {"elastic": False} if "elastic" in m else {}
    cores = _resources({"cpus": m.get("cpus")}, task)
    if math.floor(cores.get("cpus_max", 1)) <= max(1, math.ceil(cores.get("cpus_min", 1))):
        raise SpecError(task, "elastic", True, "true only with a cpus range of whole cores, "
                        "e.g. cpus = [1, 4]")
    return {"elastic": True}


FIELD_PARSERS: tuple[Parser, ...] = (
    _target, _argv, _durations, _resources, _ints, _bools, _preempt, _depends, _trigger,
    _energy, _mpi_shape, _elastic,
)
