"""Load a folder of task declarations (JSON, TOML, Python) and validate them together.

Every ``*.json`` and ``*.toml`` file holds one task (a table), a list of tasks, or a
``tasks`` key with a list of tables or a table of tables keyed by task name. Every
``*.py`` file is imported (under a private module name) so that its ``@task``
decorators register. Then, across all tasks: duplicate names, unknown dependencies,
dependency cycles, python targets that do not import, and programs that cannot be found.
Every problem is reported at once as ``SpecErrors``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from odop.errors import SpecError, SpecErrors
from odop.tasks import registry
from odop.tasks.spec import TaskSpec, check_spec
from odop.tasks.target import TargetError, load_callable, load_module

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = ["FileError", "SourcedSpecError", "load_task_folder", "load_spec_file", "validate_tasks",
           "find_cycles"]


class SourcedSpecError(SpecError):
    """A SpecError that also names the file it comes from."""

    def __init__(self, source: str, task: str, field: str, value: object, allowed: str) -> None:
        super().__init__(task, field, value, allowed)
        self.source = source

    def __str__(self) -> str:
        return f"{self.source}: {super().__str__()}"


class FileError(SourcedSpecError):
    """A tasks folder, or a file in one, that cannot be read at all: it names the file and what is
    wrong with it, not a task or a field (``task`` is the file's stem, ``field``
    ``'<file>'``)."""

    def __init__(self, source: str, problem: str) -> None:
        stem = os.path.splitext(os.path.basename(source))[0]
        super().__init__(source, stem, "<file>", os.path.basename(source), problem)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.source}: {self.problem}"


def _sourced(source: str, err: SpecError) -> SpecError:
    if isinstance(err, SourcedSpecError):
        return err
    return SourcedSpecError(source, err.task, err.field, err.value, err.allowed)


def _read(path: str) -> Any:
    with open(path, "rb") as fh:
        if path.endswith(".toml"):
            return tomllib.load(fh)
        return json.load(fh)


def _declarations(doc: Any, stem: str) -> list[Any]:
    """The task tables a spec document holds (a single table gets the file stem as name)."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, Mapping) and set(doc) == {"tasks"}:
        tasks = doc["tasks"]
        if isinstance(tasks, Mapping):
            return [{"name": k, **v} if isinstance(v, Mapping) else v for k, v in tasks.items()]
        return tasks if isinstance(tasks, list) else [tasks]
    if isinstance(doc, Mapping) and "name" not in doc:
        return [{"name": stem, **doc}]
    return [doc]


def load_spec_file(path: str, *, task_dirs: Iterable[str] = (),
                   executable_dirs: Iterable[str] = ()) -> tuple[list[TaskSpec], list[SpecError]]:
    """The valid specs of one JSON/TOML file and the errors of the others."""
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        doc = _read(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        kind = "TOML" if path.endswith(".toml") else "JSON"
        return [], [FileError(path, f"not a readable, valid {kind} file: {exc}")]
    # the file's own folder is searched first anyway: named once, in messages too
    own = os.path.dirname(os.path.abspath(path))
    dirs = tuple(d for d in task_dirs if os.path.abspath(d) != own)
    specs: list[TaskSpec] = []
    errors: list[SpecError] = []
    for decl in _declarations(doc, stem):
        spec, errs = check_spec(decl, source=path, task_dirs=dirs,
                                executable_dirs=tuple(executable_dirs))
        errors.extend(_sourced(path, e) for e in errs)
        if spec is not None:
            specs.append(spec)
    return specs, errors


def _load_python(path: str) -> tuple[list[TaskSpec], list[SpecError]]:
    """Import a task module; the tasks it declares and its import error, if any."""
    try:
        load_module(path)
    except TargetError as exc:
        cause = exc.__cause__
        if isinstance(cause, SpecError):
            return [], [_sourced(path, cause)]
        if isinstance(cause, SpecErrors):
            return [], [_sourced(path, e) for e in cause.errors]
        why = str(exc) if cause is None else f"{type(cause).__name__}: {cause}"
        return [], [FileError(path, f"this Python module failed to import: {why}")]
    prefix = f"{os.path.abspath(path)}:"
    return [s for s in registry.registered().values() if s.target.startswith(prefix)], []


def load_task_folder(path: str, *, executable_dirs: Iterable[str] = (),
                     known: Mapping[str, TaskSpec] | None = None,
                     register: bool = False) -> dict[str, TaskSpec]:
    """Every task declared in folder ``path``, validated together; SpecErrors lists all.

    ``executable_dirs`` defaults to a sibling ``executables/`` folder when one exists.
    Dependencies may also name tasks in ``known`` (default: the @task registry).
    With ``register``, the folder's tasks are added to the registry as well.
    """
    folder = os.path.abspath(path)
    if not os.path.isdir(folder):
        raise SpecErrors([FileError(folder, "not an existing folder")])
    exe_dirs = tuple(os.path.abspath(d) for d in executable_dirs)
    sibling = os.path.join(os.path.dirname(folder), "executables")
    if not exe_dirs and os.path.isdir(sibling):
        exe_dirs = (sibling,)
    specs: list[TaskSpec] = []
    errors: list[SpecError] = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        if entry.name.endswith((".json", ".toml")):
            found, errs = load_spec_file(entry.path, task_dirs=(folder,), executable_dirs=exe_dirs)
        elif entry.name.endswith(".py"):
            found, errs = _load_python(entry.path)
        else:
            continue
        specs.extend(found)
        errors.extend(errs)
    by_name = validate_tasks(specs, errors, executable_dirs=exe_dirs,
                             known=registry.registered() if known is None else known)
    if errors:
        raise SpecErrors(errors)
    if register:
        for spec in by_name.values():
            registry.register(spec)
    return by_name


def validate_tasks(specs: Iterable[TaskSpec], errors: list[SpecError], *,
                   executable_dirs: Iterable[str] = (),
                   known: Mapping[str, TaskSpec] | None = None) -> dict[str, TaskSpec]:
    """Cross-task checks, appending to ``errors``; the specs by name."""
    by_name: dict[str, TaskSpec] = {}
    for spec in specs:
        other = by_name.get(spec.name)
        if other is not None and other != spec:
            errors.append(SourcedSpecError(spec.source, spec.name, "name", spec.name,
                                           f"a unique task name (also declared in {other.source})"))
            continue
        by_name[spec.name] = spec
    universe = {**(known or {}), **by_name}
    for spec in by_name.values():
        for dep in spec.depends_on:
            if dep not in universe:
                errors.append(SourcedSpecError(
                    spec.source, spec.name, "depends_on", dep,
                    f"names of declared tasks: {', '.join(sorted(universe)) or 'none'}"))
        _check_runnable(spec, errors, tuple(executable_dirs))
    for cycle in find_cycles({n: s.depends_on for n, s in universe.items()}):
        head = universe[cycle[0]]
        errors.append(SourcedSpecError(head.source, cycle[0], "depends_on", list(head.depends_on),
                                       f"no dependency cycle; found {' -> '.join(cycle)}"))
    return by_name


def _check_runnable(spec: TaskSpec, errors: list[SpecError], exe_dirs: tuple[str, ...]) -> None:
    if spec.kind == "python":
        try:
            load_callable(spec.target)
        except TargetError as exc:
            errors.append(SourcedSpecError(spec.source, spec.name, "function", spec.target,
                                           f"an importable module:function ({exc})"))
        return
    field = "program"
    if os.path.isabs(spec.target):
        if not os.path.isfile(spec.target):
            errors.append(SourcedSpecError(spec.source, spec.name, field, spec.target,
                                           "an existing program file"))
        elif not os.access(spec.target, os.X_OK):
            errors.append(SourcedSpecError(spec.source, spec.name, field, spec.target,
                                           "an executable file (chmod +x)"))
        return
    search = os.pathsep.join((*exe_dirs, os.environ.get("PATH", "")))
    if shutil.which(spec.target, path=search) is None:
        where = f"in {', '.join(exe_dirs)} or on PATH" if exe_dirs else "on PATH"
        errors.append(SourcedSpecError(spec.source, spec.name, field, spec.target,
                                       f"an executable program {where}"))


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each dependency cycle once, as [a, b, ..., a]; edges to unknown nodes are ignored."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if state.get(root):
            continue
        path = [root]
        stack: list[tuple[str, Any]] = [(root, iter(sorted(graph[root])))]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                state[node] = 2
            elif child in graph and state.get(child) == 1:
                cycles.append(path[path.index(child):] + [child])
            elif child in graph and not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph[child]))))
    return cycles
