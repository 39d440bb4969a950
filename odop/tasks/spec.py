"""The validated, normalised declaration of a task: ``TaskSpec`` and ``parse_spec``.

Units in a ``TaskSpec``: seconds (``time_s``, ``deadline_s``, ``retry_backoff_s``),
cores (``cpus_*``, may be fractional), bytes (``memory_*``). User-facing field names and
forms are documented in docs/tasks.md; ``parse_spec`` turns them into a ``TaskSpec`` or
raises ``SpecError`` naming the task, the field, the bad value and what is allowed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from odop.errors import SpecError
from odop.tasks import _fields as F

__all__ = ["SCHEMA_VERSION", "KINDS", "PREEMPT_MODES", "USER_FIELDS", "TaskSpec",
           "parse_spec", "check_spec"]

SCHEMA_VERSION = 1
KINDS = F.KINDS
PREEMPT_MODES = F.PREEMPT_MODES
USER_FIELDS = F.USER_FIELDS


@dataclass(frozen=True)
class TaskSpec:
    """One task declaration, normalised. Build it with ``parse_spec``, not by hand."""

    name: str
    kind: str  # "python" | "executable" | "mpi"
    target: str  # "pkg.mod:function", "/abs/file.py:function", or a program path/name
    argv: tuple[str, ...] = ()  # template with {placeholders} (executable and mpi kinds)
    time_s: float | None = None  # expected wall time, seconds
    cpus_min: float = 1.0  # cores
    cpus_max: float = 1.0  # cores
    memory_min: int | None = None  # bytes
    memory_max: int | None = None  # bytes
    threads_min: int | None = None
    threads_max: int | None = None
    gpus: int = 0
    nodes: int = 1
    ranks_per_node: int | None = None
    priority: int = 0  # higher runs first
    deadline_s: float | None = None  # seconds after submission
    depends_on: tuple[str, ...] = ()
    max_runs: int | None = None  # concurrent instances; None = unbounded
    max_retries: int = 0
    retry_backoff_s: float = 1.0  # seconds to wait before a retry
    io_bound: bool = False
    trigger: dict[str, Any] | None = None  # normalised, see odop.tasks.triggers.spec
    energy: dict[str, Any] = field(default_factory=F.default_energy)
    preempt: str = "pause"  # "pause" | "repin" | "requeue"
    resumable: bool = False
    elastic: bool = False  # grows and shrinks while it runs (cpus_min < cpus_max)
    source: str = "decorator"  # the spec file, or "decorator"

    def __hash__(self) -> int:
        return hash((self.name, self.kind, self.target))

    def to_dict(self) -> dict[str, Any]:
        """Plain msgpack/JSON-safe types; ``TaskSpec.from_dict`` reverses it."""
        out: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dict):
                value = _plain(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSpec:
        """The spec from ``to_dict`` output (already normalised; not re-validated)."""
        name = str(data.get("name", "?"))
        schema = data.get("schema", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise SpecError(name, "schema", schema, f"{SCHEMA_VERSION}")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "schema":
                continue
            if key not in known:
                raise SpecError(name, key, value, f"TaskSpec fields: {', '.join(sorted(known))}")
            if key in ("argv", "depends_on"):
                value = tuple(value)
            elif isinstance(value, Mapping):
                value = _plain(value)
            kwargs[key] = value
        return cls(**kwargs)


_ANNOTATION_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "None": (type(None),),
    "tuple[str, ...]": (tuple,), "dict[str, Any]": (dict,),
}


def checked(data: Mapping[str, Any]) -> TaskSpec:
    """A spec from a ``to_dict`` mapping that crossed a socket: every field's type checked
    against its annotation, the kind and preempt mode against their allowed values."""
    spec = TaskSpec.from_dict(data)
    for f in dataclasses.fields(TaskSpec):
        value = getattr(spec, f.name)
        allowed = tuple(t for part in str(f.type).split(" | ")
                        for t in _ANNOTATION_TYPES.get(part.strip(), (object,)))
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise SpecError(spec.name, f.name, value, str(f.type))
        if isinstance(value, tuple) and not all(isinstance(v, str) for v in value):
            raise SpecError(spec.name, f.name, value, "a list of strings")
    if spec.kind not in KINDS or spec.preempt not in PREEMPT_MODES:
        raise SpecError(spec.name, "kind/preempt", (spec.kind, spec.preempt),
                        f"kind in {KINDS}, preempt in {PREEMPT_MODES}")
    return spec


def _plain(value: Any) -> Any:
    """A deep copy with tuples as lists and mappings as dicts."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def parse_spec(mapping: Mapping[str, Any], *, source: str, task_dirs: Iterable[str] = (),
               executable_dirs: Iterable[str] = ()) -> TaskSpec:
    """Validate one user declaration; raise the first ``SpecError`` found."""
    spec, errors = check_spec(mapping, source=source, task_dirs=task_dirs,
                              executable_dirs=executable_dirs)
    if errors:
        raise errors[0]
    assert spec is not None
    return spec


def check_spec(mapping: Mapping[str, Any], *, source: str, task_dirs: Iterable[str] = (),
               executable_dirs: Iterable[str] = ()) -> tuple[TaskSpec | None, list[SpecError]]:
    """Validate one declaration, collecting every error: ``(spec or None, errors)``."""
    if not isinstance(mapping, Mapping):
        return None, [SpecError("?", "<declaration>", mapping, "a table/object of task fields")]
    name, errors = F.task_name(mapping)
    values: dict[str, Any] = {}
    for parser in F.FIELD_PARSERS:
        try:
            values.update(parser(mapping, name, source=source, task_dirs=tuple(task_dirs),
                                 executable_dirs=tuple(executable_dirs)))
        except SpecError as exc:
            errors.append(exc)
    if errors:
        return None, errors
    return TaskSpec(name=name, source=source, **values), []
