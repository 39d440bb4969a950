"""Lazy re-exports (PEP 562): a package offers its modules' public names without importing
those modules until a name is first used, so each process pays only for what it uses: the
daemons start sooner, which counts where no core is idle and the ranks wait for them."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def exports(package: str, modules: Mapping[str, Sequence[str]]
            ) -> tuple[list[str], Callable[[str], Any]]:
    """``__all__`` and the ``__getattr__`` of ``package``, which re-exports ``names`` from
    each of its ``modules`` (relative names: ``"tasks.registry": ("task",)``)."""
    home = {name: f"{package}.{module}" for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name in home:
            return getattr(importlib.import_module(home[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return sorted(home), __getattr__
