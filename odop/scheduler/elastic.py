"""Elastic executions: grown and shrunk while they run, with the energy policy's core limit.

A task marked ``elastic`` with a cpus range ``[min, max]`` is granted, when placed, as
many cores as the core limit leaves (``Decider.core_limit``: the concurrency factor of
the grid's carbon level now). While it runs, each scheduling cycle compares the cores
odop holds with the limit: above it (the grid turned dirtier), running elastic
executions give cores back, newest first, down to their ``min``; below it, with nothing
queued that could start now, they take free cores of their node, oldest first, up to
their ``max``. Both by re-pinning the running process (no stop); its thread count
follows at its next start, which gets ``ODOP_CORES`` and the thread variables of the
grant it has then. An execution over several nodes is left as placed.
"""

from __future__ import annotations

from dataclasses import dataclass

from odop.scheduler.core import Decider
from odop.scheduler.fit import cores_wanted
from odop.scheduler.lifecycle import Lifecycle


@dataclass(frozen=True)
class _Elastic:
    execution: str
    node: str
    cores: list[int]
    low: int
    high: int
    started_at: float


class Elastic:
    """Resizes running elastic executions to the core limit (see the module docstring)."""

    def __init__(self, decider: Decider, lifecycle: Lifecycle) -> None:
        self.decider, self.lifecycle = decider, lifecycle

    def adjust(self, now: float) -> None:
        """One look after a cycle's placements: shrink above the limit, grow below it."""
        d = self.decider
        if d.core_limit is None or not any(s.get("elastic") for s in d.specs.values()):
            return  # the usual cycle: no scan of what runs
        running = self._running()
        if not running:
            return
        free = d.free_cores()
        limit = d.core_limit(d.granted + sum(len(c) for c in free.values()))
        if d.granted > limit:
            self._shrink(running, d.granted - limit)
        elif d.granted < limit and not self._due(now):
            self._grow(running, limit - d.granted, free)

    def _running(self) -> list[_Elastic]:
        """The started, single-node elastic executions, oldest first."""
        d, started = self.decider, self.lifecycle.state.started_at
        out = []
        for execution, (task, node, cores) in d.active.items():
            spec = d.specs.get(task) or {}
            if spec.get("elastic") and execution in started and execution not in d.spans:
                low, high = cores_wanted(spec)
                out.append(_Elastic(execution, node, sorted(cores), low, high,
                                    started[execution]))
        return sorted(out, key=lambda e: e.started_at)

    def _due(self, now: float) -> bool:
        """Something queued could start now: its cores are not for growing."""
        return any(p.not_before <= now for p in self.decider.pending.values())

    def _shrink(self, running: list[_Elastic], over: int) -> None:
        for e in reversed(running):
            give = min(over, len(e.cores) - e.low)
            if give > 0:
                self.lifecycle.repin(e.execution, e.cores[:len(e.cores) - give],
                                     f"shrunk by {give} core(s): the grid is dirtier")
                over -= give
            if over <= 0:
                return

    def _grow(self, running: list[_Elastic], room: int, free: dict[str, list[int]]) -> None:
        for e in running:
            spare = free.get(e.node, [])
            take = min(room, e.high - len(e.cores), len(spare))
            if take > 0:
                self.lifecycle.repin(e.execution, sorted(e.cores + spare[:take]),
                                     f"grown by {take} core(s): the grid is cleaner")
                free[e.node], room = spare[take:], room - take
            if room <= 0:
                return
