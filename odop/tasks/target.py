"""Import the callable a python task's target names.

Targets are ``"package.module:function"`` or ``"/abs/path/file.py:function"``. A file is
loaded under a private module name, never ``"__main__"``, so the script's
``if __name__ == "__main__":`` block does not run; its folder goes on ``sys.path`` first
so that its sibling imports work.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from odop.errors import OdopError

__all__ = ["TargetError", "load_callable", "split_target", "file_module_name", "file_of_module"]

_FILE_PREFIX = "_odop_file_"
_FILE_MODULES: dict[str, str] = {}  # private module name -> absolute file path


class TargetError(OdopError, ImportError):
    """A python task target whose module, file or function cannot be loaded."""


def split_target(target: str) -> tuple[str, str]:
    """``(module or file path, dotted function name)``; TargetError if malformed."""
    if not isinstance(target, str) or ":" not in target:
        raise TargetError(f"target {target!r} is malformed; "
                          "allowed: 'package.module:function' or '/abs/path/file.py:function'")
    where, _, func = target.rpartition(":")
    if not where or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", func):
        raise TargetError(f"target {target!r} is malformed; "
                          "allowed: 'package.module:function' or '/abs/path/file.py:function'")
    return where, func


def file_module_name(path: str) -> str:
    """The private module name a script file is loaded under (stable per path)."""
    path = os.path.abspath(path)
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    return f"{_FILE_PREFIX}{stem}_{digest}"


def file_of_module(module_name: str) -> str | None:
    """The script path behind a private module name, or None for a normal module."""
    return _FILE_MODULES.get(module_name)


def _load_file(path: str) -> Any:
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise TargetError(f"task file {path!r} does not exist")
    name = file_module_name(path)
    _FILE_MODULES[name] = path
    if name in sys.modules:
        return sys.modules[name]
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TargetError(f"task file {path!r} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise TargetError(f"task file {path!r} failed to import: "
                          f"{type(exc).__name__}: {exc}") from exc
    return module


def load_module(where: str) -> Any:
    """The module named by the part of a target before ':' (a file path or a module)."""
    if where.endswith(".py") or os.sep in where:
        return _load_file(where)
    if where == "__main__":
        raise TargetError("target module '__main__' cannot be imported by name; "
                          "use the script's path: '/abs/path/script.py:function'")
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        raise TargetError(f"module {where!r} not found ({exc}); is it on sys.path?") from exc
    except Exception as exc:
        raise TargetError(f"module {where!r} failed to import: "
                          f"{type(exc).__name__}: {exc}") from exc


def load_callable(target: str) -> Callable[..., Any]:
    """The function ``target`` names; TargetError for a missing module, file or function."""
    where, func = split_target(target)
    obj: Any = load_module(where)
    for part in func.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise TargetError(f"target {target!r}: {where!r} has no attribute {part!r}") from None
    if not callable(obj):
        raise TargetError(f"target {target!r} is a {type(obj).__name__}, not a callable")
    return obj
