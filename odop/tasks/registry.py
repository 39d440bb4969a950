"""The ``@task`` decorator and the process-wide registry of declared tasks."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

from odop.errors import SpecError, SpecErrors, UnknownTaskError
from odop.tasks.spec import TaskSpec, check_spec
from odop.tasks.spec import parse_spec as parse_spec  # re-exported
from odop.tasks.target import file_of_module

__all__ = ["task", "register", "registered", "get", "clear", "function_target"]

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, TaskSpec] = {}
_LOCK = threading.Lock()
_DECORATOR_SET = ("function", "program", "executable")


def function_target(fn: Callable[..., Any], task: str = "?") -> str:
    """The importable target string of ``fn``: 'module:qualname' or '/abs/file.py:qualname'."""
    qualname = getattr(fn, "__qualname__", None) or repr(fn)
    if "<" in qualname:  # <locals>, <lambda>
        raise SpecError(task, "function", qualname,
                        "a module-level function (importable by name), not a lambda or closure")
    module = getattr(fn, "__module__", None)
    if not module:
        raise SpecError(task, "function", qualname, "a function defined in a module")
    path = file_of_module(module)
    if path is not None:
        return f"{path}:{qualname}"
    if module != "__main__":
        return f"{module}:{qualname}"
    main = sys.modules.get("__main__")
    main_spec = getattr(main, "__spec__", None)
    if main_spec is not None and main_spec.name not in ("__main__", None):
        return f"{main_spec.name}:{qualname}"
    main_file = getattr(main, "__file__", None)
    if not main_file:
        raise SpecError(task, "function", qualname,
                        "a function in a script file or an importable module; one defined in "
                        "code run with python -c or typed interactively cannot be imported "
                        "by a worker")
    return f"{os.path.abspath(main_file)}:{qualname}"


def register(spec: TaskSpec) -> TaskSpec:
    """Add ``spec``; the same declaration twice is fine, a different one is a SpecError."""
    with _LOCK:
        known = _REGISTRY.get(spec.name)
        if known is not None and known != spec:
            raise SpecError(spec.name, "name", spec.name,
                            f"a unique task name; already declared by {known.source} "
                            f"with target {known.target!r}")
        _REGISTRY[spec.name] = spec
    return spec


@overload
def task(fn: F, /) -> F: ...
@overload
def task(fn: None = None, /, *, name: str | None = None, **fields: Any) -> Callable[[F], F]: ...


def task(fn: Any = None, /, *, name: str | None = None, **fields: Any) -> Any:
    """Declare a function as an odop task: ``@task`` or ``@task(name=..., time="10min", ...)``.

    Validates the fields (docs/tasks.md) and registers the spec; returns the function
    unchanged with the spec in ``fn.__odop_task__``.
    """
    if fn is not None and not callable(fn):
        raise SpecError(str(fn), "name", fn, "keyword form: @task(name=...) or bare @task")
    for key in _DECORATOR_SET:
        if key in fields:
            raise SpecError(name or "?", key, fields[key],
                            "set by the decorator itself; omit it (use a spec file for programs)")

    def decorate(func: F) -> F:
        task_name = name if name is not None else getattr(func, "__name__", "?")
        spec = _checked(func, task_name, fields)
        register(spec)
        func.__odop_task__ = spec  # type: ignore[attr-defined]
        return func

    return decorate if fn is None else decorate(fn)


PLACEHOLDER_TARGET = "odop_unimportable:function"
"""Stands for a function that cannot be imported while its other fields are checked."""


def _checked(func: Callable[..., Any], task_name: str, fields: dict[str, Any]) -> TaskSpec:
    """The spec of a decorated function; every error at once (the fields' and the
    function's own), as one SpecError or, for several, SpecErrors."""
    errors: list[SpecError] = []
    try:
        target = function_target(func, task_name)
    except SpecError as exc:
        errors.append(exc)
        target = PLACEHOLDER_TARGET
    spec, field_errors = check_spec({"name": task_name, "function": target, **fields},
                                    source="decorator")
    errors = field_errors + errors
    if len(errors) > 1:
        raise SpecErrors(errors)
    if errors:
        raise errors[0]
    assert spec is not None
    return spec


def registered() -> dict[str, TaskSpec]:
    """A copy of every registered task, by name."""
    with _LOCK:
        return dict(_REGISTRY)


def get(name: str) -> TaskSpec:
    """The spec registered under ``name``; UnknownTaskError listing the known names."""
    with _LOCK:
        try:
            return _REGISTRY[name]
        except KeyError:
            raise UnknownTaskError(name, list(_REGISTRY)) from None


def clear() -> None:
    """Forget every registered task (for tests)."""
    with _LOCK:
        _REGISTRY.clear()
