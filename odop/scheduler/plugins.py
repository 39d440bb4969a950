"""The registry of selection and placement algorithms, chosen by name in the config.

Built-ins are always there. Your own: decorate the class with :func:`register` in a
module, and name that module (or its .py file) in ``$ODOP_PLUGINS`` (comma-separated),
so that every process that reads the config — the scheduler daemon included, which
inherits the environment — imports it before looking a name up. See docs/algorithms.md.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import TypeVar

from odop.errors import ConfigError
from odop.scheduler.placement import PLACEMENTS, Placement
from odop.scheduler.selection import SELECTIONS, Selection

PLUGINS_ENV = "ODOP_PLUGINS"
A = TypeVar("A", bound=type)
_loaded: set[str] = set()


def register(cls: A) -> A:
    """Class decorator: make a Selection or Placement subclass choosable by its ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"algorithm {cls.__name__} needs a class attribute name = '...'")
    if issubclass(cls, Selection):
        SELECTIONS[name] = cls
    elif issubclass(cls, Placement):
        PLACEMENTS[name] = cls
    else:
        raise ConfigError(f"algorithm {cls.__name__} must subclass Selection or Placement")
    return cls


def load_plugins() -> None:
    """Import the modules named in ``$ODOP_PLUGINS`` (module names or .py paths), once."""
    for entry in filter(None, (e.strip() for e in os.environ.get(PLUGINS_ENV, "").split(","))):
        if entry in _loaded:
            continue
        try:
            _import(entry)
        except Exception as exc:  # any error in the user's module is a config error
            raise ConfigError(f"{PLUGINS_ENV} entry {entry!r} cannot be imported: {exc}") from exc
        _loaded.add(entry)


def _import(entry: str) -> None:
    if not entry.endswith(".py"):
        importlib.import_module(entry)
        return
    path = Path(entry).resolve()
    name = f"odop_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def available(kind: str) -> list[str]:
    """Names of the algorithms of ``kind`` ("selection" or "placement")."""
    load_plugins()
    return sorted(SELECTIONS if kind == "selection" else PLACEMENTS)


def make_selection(name: str) -> Selection:
    load_plugins()
    if name not in SELECTIONS:
        raise ConfigError(f"selection {name!r} is unknown; allowed: {', '.join(SELECTIONS)}")
    return SELECTIONS[name]()


def make_placement(name: str) -> Placement:
    load_plugins()
    if name not in PLACEMENTS:
        raise ConfigError(f"placement {name!r} is unknown; allowed: {', '.join(PLACEMENTS)}")
    return PLACEMENTS[name]()
