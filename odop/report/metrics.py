"""Numbers derived from a loaded run: queue over time, waiting times, headline, per task.

Units: seconds, unix seconds, CPU seconds (core-seconds), bytes, joules, gCO2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odop.energy.accounting import ExecutionEnergy
from odop.report.data import RunData

RUNNING_STATES = ("placed", "running")


@dataclass(frozen=True)
class QueueSeries:
    """Executions per state after each event (step function, value holds until the next)."""

    t: np.ndarray
    queued: np.ndarray
    running: np.ndarray
    """Placed or running (holding cores)."""
    paused: np.ndarray


def queue_series(events: list[tuple[str, float, str, str]]) -> QueueSeries:
    """Replay the state events into counts of queued, running and paused executions."""
    state: dict[str, str] = {}
    counts = {"queued": 0, "running": 0, "paused": 0}
    rows = []
    for execution, t, new, _ in events:
        old = state.get(execution)
        for s, d in ((old, -1), (new, +1)):
            key = "running" if s in RUNNING_STATES else s
            if key in counts:
                counts[key] += d
        state[execution] = new
        rows.append((t, counts["queued"], counts["running"], counts["paused"]))
    arr = np.array(rows, dtype=float).reshape(-1, 4)
    return QueueSeries(arr[:, 0], arr[:, 1].astype(int), arr[:, 2].astype(int),
                       arr[:, 3].astype(int))


def wall_of(e: dict[str, Any]) -> float | None:
    """Measured wall seconds, else ended - started."""
    if e["wall_s"] is not None:
        return float(e["wall_s"])
    if e["started_at"] is not None and e["ended_at"] is not None:
        return float(e["ended_at"] - e["started_at"])
    return None


def waiting_s(e: dict[str, Any]) -> float | None:
    """Seconds from submission to (the latest) start; None if it never started."""
    if e["started_at"] is None:
        return None
    return max(0.0, float(e["started_at"] - e["submitted_at"]))


def harvested_cpu_s(data: RunData) -> float:
    """CPU seconds of tasks run while the simulation ran (each task's CPU spread evenly)."""
    t0, t1 = data.started, data.sim_end
    if t0 is None:
        return 0.0
    t1 = t1 if t1 is not None else max((e[1] for e in data.events), default=t0)
    total = 0.0
    for e in data.executions:
        s, end, cpu = e["started_at"], e["ended_at"], e["cpu_s"]
        if s is None or end is None or not cpu or end <= s:
            continue
        overlap = max(0.0, min(end, t1) - max(s, t0))
        total += cpu * overlap / (end - s)
    return total


MAKESPAN = ("from the run's start (when odop created the run) to the end of the simulation "
            "or of the last task, whichever is later")
"""The one definition of makespan (time to solution): the report's and ``odop demo``'s."""


def makespan_s(data: RunData) -> float | None:
    """Seconds from the run's start to the later of the simulation's end and the last
    execution's end (:data:`MAKESPAN`); None without a start or either end."""
    t0 = data.started
    ends = [float(e["ended_at"]) for e in data.executions if e["ended_at"]]
    finish = max([*ends, *([data.sim_end] if data.sim_end is not None else [])], default=None)
    return None if t0 is None or finish is None else finish - t0


def run_makespan(run_dir: Path | str) -> float | None:
    """:func:`makespan_s` of the run in ``run_dir``, read from its database alone."""
    from odop.report.data import load_run

    return makespan_s(load_run(run_dir, samples=False))


def headline(data: RunData, energies: dict[str, ExecutionEnergy] | None = None,
             node_joules: float | None = None) -> dict[str, Any]:
    """The report's first numbers (docs/report.md says how each is computed)."""
    ex = data.executions
    counts: dict[str, int] = {}
    for e in ex:
        counts[e["state"]] = counts.get(e["state"], 0) + 1
    t0, sim_end = data.started, data.sim_end
    last_end = max((float(e["ended_at"]) for e in ex if e["ended_at"]), default=None)
    sim_wall = sim_end - t0 if t0 is not None and sim_end is not None else None
    makespan = makespan_s(data)
    walls = [w for w in (wall_of(e) for e in ex) if w is not None]
    cpus = [float(e["cpu_s"]) for e in ex if e["cpu_s"] is not None]
    cores = sum(data.cores_per_node().values())
    waits = np.array([w for w in (waiting_s(e) for e in ex) if w is not None])
    out: dict[str, Any] = {
        "run": data.name, "ended": data.ended(), "nodes": len(data.cores_per_node()),
        "cores": cores, "executions": len(ex), "counts": counts,
        "tasks_done": counts.get("done", 0), "tasks_failed": counts.get("failed", 0),
        "sim_wall_s": sim_wall, "makespan_s": makespan, "last_task_end": last_end,
        "tasks_wall_s": float(sum(walls)), "tasks_cpu_s": float(sum(cpus)),
        "harvested_cpu_s": harvested_cpu_s(data),
        "wait_mean_s": float(waits.mean()) if waits.size else None,
        "wait_median_s": float(np.median(waits)) if waits.size else None,
        "wait_max_s": float(waits.max()) if waits.size else None,
    }
    out.update(_time_to_solution(sim_wall, makespan, out["tasks_wall_s"], out["tasks_cpu_s"],
                                 cores))
    out.update(_energy_totals(energies or {}, node_joules))
    return out


def _time_to_solution(sim: float | None, makespan: float | None, wall: float, cpu: float,
                      cores: int) -> dict[str, Any]:
    """Against the simulation alone, and against running the tasks after it."""
    if sim is None or makespan is None:
        return {"vs_sim_s": None, "vs_sim_ratio": None, "after_serial_s": None,
                "after_spread_s": None}
    return {
        "vs_sim_s": makespan - sim,
        "vs_sim_ratio": makespan / sim if sim > 0 else None,
        "after_serial_s": sim + wall,
        "after_spread_s": sim + cpu / cores if cores else None,
    }


def _energy_totals(energies: dict[str, ExecutionEnergy], node_joules: float | None
                   ) -> dict[str, Any]:
    sources = sorted({a.power_source for a in energies.values()})
    signals = sorted({a.signal_source for a in energies.values()})
    return {
        "tasks_joules": float(sum(a.joules for a in energies.values())),
        "tasks_gco2": float(sum(a.gco2 for a in energies.values())),
        "node_joules": node_joules, "power_source": "+".join(sources) or "none",
        "signal_source": "+".join(signals) or "none",
    }


def task_stats(data: RunData, energies: dict[str, ExecutionEnergy] | None = None
               ) -> list[dict[str, Any]]:
    """Per task name: count, done, failed, wall/CPU/wait mean and total, max RSS, energy."""
    energies = energies or {}
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in data.executions:
        groups.setdefault(e["task"], []).append(e)
    return [_stats(task, rows, energies) for task, rows in sorted(groups.items())]


def _stats(task: str, rows: list[dict[str, Any]], energies: dict[str, ExecutionEnergy]
           ) -> dict[str, Any]:
    def values(fn: Any) -> np.ndarray:
        return np.array([v for v in map(fn, rows) if v is not None], dtype=float)

    wall, cpu, wait = values(wall_of), values(lambda e: e["cpu_s"]), values(waiting_s)
    rss = values(lambda e: e["max_rss_bytes"])
    acc = [energies[e["id"]] for e in rows if e["id"] in energies]
    return {
        "task": task, "count": len(rows),
        "done": sum(e["state"] == "done" for e in rows),
        "failed": sum(e["state"] == "failed" for e in rows),
        "wall_mean_s": _mean(wall), "wall_total_s": float(wall.sum()),
        "cpu_mean_s": _mean(cpu), "cpu_total_s": float(cpu.sum()),
        "wait_mean_s": _mean(wait), "rss_max_bytes": int(rss.max()) if rss.size else None,
        "joules": float(sum(a.joules for a in acc)), "gco2": float(sum(a.gco2 for a in acc)),
    }


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None
