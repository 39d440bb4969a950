"""Python-script tasks: which programs are one, and what each has taught the engine.

A program task is a *Python script* when its command is this interpreter on a ``.py``
file: ``program = "python"`` (or ``python3``, ``python3.X``, or an absolute path) that
resolves on the task's ``PATH`` to the interpreter running odop (the same file in the
same folder, so a virtual environment's ``python`` is not the system's), and the first
argument ends in ``.py`` (no interpreter options before it). Such a task is forked warm
by the fork server (odop.engine.forkserver) with the semantics of ``python script
ARGS`` (odop.engine.scriptrun).

:class:`ScriptBook` keeps, per task, the modules its runs imported (pre-imported by its
zygote from then on) and its mode: ``fork``; ``trial`` after a forked run failed, so the
next run starts a fresh interpreter; ``fresh`` for good when that fresh run succeeded
(the script does not survive being forked: a C extension that dislikes fork, threads
at import...), or back to ``fork`` when it failed too (the script's own failure). Both
are kept in the profile store (``$ODOP_HOME/profiles.db``, table ``scripts``) when the
book has one, so a later run starts where this one left off.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from odop.paths import RunPaths

PYTHON_NAME = re.compile(r"python(3(\.\d+)?)?")
"""Program names that may be this interpreter."""


def script_argv(argv: Sequence[str], path: str | None) -> tuple[str, list[str]] | None:
    """``(script, its arguments)`` when ``argv`` runs this interpreter on a ``.py`` file
    (``path``: the task's PATH); None otherwise."""
    if len(argv) < 2 or not argv[1].endswith(".py"):
        return None
    if not PYTHON_NAME.fullmatch(os.path.basename(argv[0])):
        return None
    program = shutil.which(argv[0], path=path)
    if program is None:
        return None
    here = sys.executable
    same_folder = os.path.dirname(os.path.abspath(program)) == os.path.dirname(here)
    if not same_folder or os.path.realpath(program) != os.path.realpath(here):
        return None
    return argv[1], list(argv[2:])


def profiles_of(paths: RunPaths) -> Path | None:
    """The profile store of a run under ``$ODOP_HOME/runs/``; None for a run elsewhere
    (its script tasks then learn for the agent's lifetime only)."""
    runs = paths.root.parent
    return runs.parent / "profiles.db" if runs.name == "runs" else None


class ScriptBook:
    """Per script task: its learned imports and its mode (see the module docstring)."""

    def __init__(self, profiles: Path | None = None) -> None:
        self.path = profiles
        self._store: Any = None
        self._known: dict[str, tuple[list[str], str, str]] = {}

    def entry(self, task: str) -> tuple[list[str], str, str]:
        """(imports, mode, reason) of ``task``."""
        if task not in self._known:
            self._known[task] = self._load(task)
        return self._known[task]

    def forked(self, task: str) -> bool:
        """Whether ``task``'s next run is forked (its mode is ``fork``)."""
        return self.entry(task)[1] == "fork"

    def ended(self, task: str, forked: bool, status: int | None,
              imports: list[str] | None) -> None:
        """Learn from one run: its route, exit status (None: killed) and new imports."""
        learned, mode, reason = self.entry(task)
        if imports:
            learned = sorted(set(learned) | set(imports))
        ok = status == 0
        if forked and not ok and mode == "fork":
            mode, reason = "trial", f"a forked run ended with status {status}"
        elif not forked and mode == "trial":
            mode, reason = ("fresh", f"{reason}; a fresh run then succeeded") if ok else (
                "fork", "")
        if (learned, mode, reason) != self._known[task]:
            self._known[task] = (learned, mode, reason)
            self._save(task)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _open(self) -> Any:
        if self._store is None and self.path is not None:
            from odop.store.profiles import ProfileStore

            try:
                self._store = ProfileStore(self.path)
            except (OSError, sqlite3.Error):
                self.path = None  # learned in memory only
        return self._store

    def _load(self, task: str) -> tuple[list[str], str, str]:
        store = self._open()
        if store is not None:
            with contextlib.suppress(sqlite3.Error):
                return store.script(task)
        return [], "fork", ""

    def _save(self, task: str) -> None:
        store = self._open()
        if store is not None:
            with contextlib.suppress(sqlite3.Error):
                store.set_script(task, *self._known[task])
