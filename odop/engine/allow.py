"""Which task code an agent may run: only what the run declared.

A START command must name a task declared in the run's database — the same kind, target
(module:function, script:function or program) and argv template — so whoever can reach the
agent's socket still cannot make it run other code or programs. Declarations are re-read
whenever an unknown one appears (a task declared a moment ago must not be refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from odop.store.executions import RunStore

Key = tuple[str, str, tuple[str, ...]]


def task_key(spec: Mapping[str, Any]) -> Key:
    return (str(spec.get("kind")), str(spec.get("target")),
            tuple(str(a) for a in spec.get("argv") or ()))


class AllowList:
    """The declared tasks of one run, as the agent checks START commands against them."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.allowed: set[Key] = set()

    def refusal(self, spec: Mapping[str, Any]) -> str | None:
        """None when ``spec`` is a declared task, else why it is refused."""
        key = task_key(spec)
        if key not in self.allowed:
            self._reload()
        if key in self.allowed:
            return None
        return (f"refused: {key[0]} task {key[1]!r} with argv {list(key[2])} is not declared "
                f"in this run (only declared tasks run)")

    def python_targets(self) -> list[str]:
        """The targets of the declared Python tasks (re-read from the run)."""
        self._reload()
        return sorted({target for kind, target, _ in self.allowed if kind == "python"})

    def _reload(self) -> None:
        try:
            store = RunStore(self.db, readonly=True)
        except Exception:  # no database yet, or unreadable: nothing is declared
            return
        try:
            self.allowed = {task_key(spec) for spec in store.tasks().values()}
        except Exception:
            pass
        finally:
            store.close()
