"""Every plugin family of odop, one pattern: a :class:`Registry` of classes by name.

A family's built-ins register themselves when their module is imported (its ``home``);
your own: decorate the class with the family's ``register`` in a module, and name that
module (or its .py file) in ``$ODOP_PLUGINS`` (comma-separated), so that every process
that looks a name up — the scheduler daemon included, which inherits the environment —
imports it first. Families: ``SELECTIONS`` and ``PLACEMENTS`` (odop.scheduler),
``TRIGGERS`` (odop.tasks.triggers), ``GRID_PROVIDERS`` (odop.energy.signals). The
contract of each is the docstring of its base class. See docs/algorithms.md.

This module imports none of the families: the config checks a name against a family
without importing the scheduler.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from odop.errors import ConfigError

PLUGINS_ENV = "ODOP_PLUGINS"
T = TypeVar("T")
_loaded: set[str] = set()


class Registry(Generic[T]):
    """Classes of one family by name (their ``key`` class attribute)."""

    def __init__(self, family: str, home: str, key: str = "name") -> None:
        self.family, self.home, self.key = family, home, key
        self._classes: dict[str, T] = {}

    def register(self, cls: T) -> T:
        """Class decorator: make ``cls`` choosable by its ``key`` attribute."""
        name = getattr(cls, self.key, None)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.family} {getattr(cls, '__name__', cls)} needs a class "
                              f"attribute {self.key} = '...'")
        self._classes[name] = cls
        return cls

    def get(self, name: str) -> T:
        """The class registered as ``name``; ConfigError naming the allowed ones if none."""
        self.load()
        if name not in self._classes:
            raise ConfigError(f"{self.family} {name!r} is unknown; allowed: "
                              f"{', '.join(self.names())}")
        return self._classes[name]

    def names(self) -> list[str]:
        self.load()
        return sorted(self._classes)

    def items(self) -> list[tuple[str, T]]:
        self.load()
        return sorted(self._classes.items())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        self.load()
        return isinstance(name, str) and name in self._classes

    def load(self) -> None:
        """Import the built-ins and the plugins of ``$ODOP_PLUGINS`` (each once)."""
        if self.home not in sys.modules:
            importlib.import_module(self.home)
        load_plugins()

    def snapshot(self) -> dict[str, T]:
        """The registered classes now (tests restore them with :meth:`restore`)."""
        return dict(self._classes)

    def restore(self, saved: dict[str, Any]) -> None:
        self._classes = dict(saved)


SELECTIONS: Registry[Any] = Registry("selection", "odop.scheduler.selection")
PLACEMENTS: Registry[Any] = Registry("placement", "odop.scheduler.placement")
TRIGGERS: Registry[Any] = Registry("trigger kind", "odop.tasks.triggers", key="kind")
GRID_PROVIDERS: Registry[Any] = Registry("grid provider", "odop.energy.signals", key="provider")
FAMILIES = {"selection": SELECTIONS, "placement": PLACEMENTS}
"""The families a config key chooses from."""


def load_plugins() -> None:
    """Import the modules named in ``$ODOP_PLUGINS`` (module names or .py paths), once."""
    for entry in filter(None, (e.strip() for e in os.environ.get(PLUGINS_ENV, "").split(","))):
        if entry in _loaded:
            continue
        _loaded.add(entry)  # before: a plugin module may look its own family up
        try:
            _import(entry)
        except Exception as exc:  # any error in the user's module is a config error
            _loaded.discard(entry)
            raise ConfigError(f"{PLUGINS_ENV} entry {entry!r} cannot be imported: {exc}") from exc


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
