"""What each task uses beyond its rusage: energy (J) and peak threads.

A task's energy is its CPU time (exact, from rusage) times the node's power per busy core
averaged over the samples taken while it ran (the latest sample's for a task shorter than
one interval): node power split between processes by CPU-time share, the model stated in
docs/energy.md. Every figure carries the node's power source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TaskUsage:
    watts_per_core_sum: float = 0.0
    samples: int = 0
    threads: int = 0

    def energy_j(self, cpu_s: float, fallback_w_per_core: float | None) -> float | None:
        if self.samples:
            return cpu_s * self.watts_per_core_sum / self.samples
        return None if fallback_w_per_core is None else cpu_s * fallback_w_per_core


class UsageMeter:
    """Follows the node's power per busy core and each task's peak threads."""

    def __init__(self) -> None:
        self.tasks: dict[int, TaskUsage] = {}
        self.w_per_core: float | None = None
        self.source = ""

    def start(self, pid: int) -> None:
        self.tasks[pid] = TaskUsage()

    def stop(self, pid: int) -> TaskUsage:
        return self.tasks.pop(pid, TaskUsage())

    def add(self, sample: dict[str, Any]) -> None:
        """Fold one observer sample into the node's figure and every followed task."""
        power = sample.get("power", {})
        watts = power.get("watts", {}).get("total")
        if watts is None:
            return
        busy = sum(sample.get("system", {}).get("cpu", {}).get("util", []))
        self.w_per_core = watts / max(busy, 1.0)
        self.source = power.get("source") or ",".join(
            sorted(set(power.get("sources", {}).values())))
        rows = {row.get("pid"): row for row in sample.get("processes", {}).get("watched", [])}
        for pid, usage in self.tasks.items():
            usage.watts_per_core_sum += self.w_per_core
            usage.samples += 1
            if pid in rows:
                usage.threads = max(usage.threads, int(rows[pid].get("threads") or 0))
