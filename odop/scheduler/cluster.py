"""What the scheduler knows of each node: its cores, the simulation's use, and its grants."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Node:
    """One node as seen through its agent's samples (utilisation 0..1 per core)."""

    name: str
    identity: bytes
    cores: list[int]
    util: list[float] = field(default_factory=list)
    sim_bound: frozenset[int] = frozenset()
    sim_n: int = 0
    """Simulation processes the agent sees on this node."""
    sim_cpu: float = 0.0
    """Cores' worth of CPU the simulation used over the last sample."""
    granted: dict[int, str] = field(default_factory=dict)
    """core -> execution holding it; a grant is held until the task is paused, moved or gone."""
    sim_alive: bool = True
    last_seen: float = field(default_factory=time.monotonic)
    power_w: float | None = None
    power_source: str = ""
    sampled: bool = False
    """No core is offered before the first sample says where the simulation runs."""

    def update(self, view: dict[str, Any], sim_alive: bool) -> None:
        self.util = [float(u) for u in view.get("util", [])]
        self.sim_bound = frozenset(int(c) for c in view.get("sim_bound", []))
        self.sim_n = int(view.get("sim_n", 0))
        self.sim_cpu = float(view.get("sim_cpu", 0.0))
        self.sim_alive = sim_alive
        self.power_w = view.get("power_w")
        self.power_source = view.get("power_source", "")
        self.last_seen = time.monotonic()
        self.sampled = True

    def sim_cores(self, threshold: float) -> set[int]:
        """Cores the simulation holds: those its ranks are bound to, or, for unbound ranks,
        the busiest cores above ``threshold`` (0..1) that no task of ours was granted, as
        many as the simulation's CPU use accounts for."""
        if self.sim_bound:
            return set(self.sim_bound)
        if not self.sim_n:
            return set()
        busy = sorted(((u, c) for c, u in zip(self.cores, self.util, strict=False)
                       if u > threshold and c not in self.granted), reverse=True)
        return {c for _, c in busy[:max(1, math.ceil(self.sim_cpu - 0.25))]}

    def free(self, *, sim_running: bool, threshold: float) -> list[int]:
        """Cores free for a new task now, in core order."""
        if not self.sampled:
            return []
        busy = set(self.granted)
        if sim_running:
            busy |= self.sim_cores(threshold)
        return [c for c in self.cores if c not in busy]

    def grant(self, cores: list[int], execution: str) -> None:
        for c in cores:
            self.granted[c] = execution

    def release(self, execution: str) -> None:
        for c in [c for c, e in self.granted.items() if e == execution]:
            del self.granted[c]
