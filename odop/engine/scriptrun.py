"""Run a Python script in a forked interpreter as ``python script.py ARGS`` would.

What a fresh interpreter gives a script, and so what :func:`run_script` gives it: a new
``__main__`` module namespace with ``__name__ == "__main__"`` and ``__file__``,
``sys.argv = [script, *args]``, the script's own folder (symlinks resolved) first on
``sys.path``, the exit status of ``SystemExit`` (None: 0, an int: itself, anything else
printed to stderr: 1), 1 with the traceback on stderr for any other exception, and at the
end what interpreter shutdown runs: non-daemon threads joined, then ``atexit`` handlers.
What it cannot give: the interpreter's start-up settings (``PYTHON*`` variables, ``-X``
options) are those of the process it was forked from, and the modules that process
imported already are there (see docs/tasks.md, Python scripts).
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
import traceback
from collections.abc import Iterable, Sequence

NEVER_PREIMPORT = ("mpi4py.MPI", "__main__")
"""Modules whose import does what a pre-start must not (mpi4py.MPI initialises MPI)."""


def script_folder(path: str) -> str:
    """What a fresh interpreter puts first on ``sys.path`` for ``path``."""
    return os.path.dirname(os.path.realpath(path))


def exit_status(exc: SystemExit) -> int:
    """The process exit status ``SystemExit(code)`` gives in a fresh interpreter."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_script(path: str, args: Sequence[str]) -> int:
    """Run ``path`` as ``__main__`` with ``args``; returns its exit status."""
    sys.argv = [path, *args]
    sys.path[0] = script_folder(path)  # in place of the fork server's (its start folder)
    try:
        runpy.run_path(path, run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exit_status(exc)
    except BaseException:
        traceback.print_exc()
        code = 1
    return _shut_down(code)


def _shut_down(code: int) -> int:
    """What interpreter shutdown would run: join non-daemon threads, then atexit."""
    threading = sys.modules.get("threading")
    try:
        if threading is not None:
            threading._shutdown()
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = exit_status(exc)
    except BaseException:
        traceback.print_exc()
    return code


def learned(modules: Iterable[str], folder: str) -> list[str]:
    """The modules worth pre-importing for a script in ``folder``: installed ones (not the
    script's own siblings, which may change between runs), never NEVER_PREIMPORT."""
    out = []
    for name in modules:
        if name in NEVER_PREIMPORT or name.startswith(("_odop_", "mpi4py.MPI")):
            continue
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None) or ""
        if file and os.path.realpath(file).startswith(folder + os.sep):
            continue
        out.append(name)
    return sorted(out)


def preimport(modules: Iterable[str]) -> list[str]:
    """Import ``modules`` (those that fail are skipped); returns those that failed."""
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 (a module that fails here is imported by the script)
            failed.append(name)
    return failed
