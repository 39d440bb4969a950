"""Process sampler: the simulation's ranks on this node, running tasks, odop itself."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from odop_obs.errors import ObsConfigError, UnknownProcessError
from odop_obs.samplers.base import Sampler

ROLES = ("sim", "task", "odop", "other")
_GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)


@dataclass
class _Target:
    proc: psutil.Process
    role: str
    label: str
    tree: bool
    cpu_s: float  # cumulative CPU seconds at the previous sample


def _cpu_seconds(proc: psutil.Process, tree: bool) -> tuple[float, int]:
    """CPU seconds of ``proc`` (with live and reaped descendants when ``tree``), and the
    number of processes counted."""
    t = proc.cpu_times()
    total = t.user + t.system
    if not tree:
        return total, 1
    total += t.children_user + t.children_system
    kids = proc.children(recursive=True)
    for kid in kids:
        try:
            k = kid.cpu_times()
            total += k.user + k.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total, 1 + len(kids)


class ProcessSampler(Sampler):
    """Watched processes, registered with ``watch(pid, role, label, tree)``.

    Section ``processes``::

        watched: [{pid, role, label, cpu (cores: CPU seconds per second, may exceed 1),
                   cpu_s (cumulative CPU seconds), rss (bytes), threads, procs,
                   core (last core run on), affinity [cores], status}]
        exited:  [{pid, role, label, cpu_s}]  reported once, then forgotten
        roles:   {role: {count, cpu (cores), rss (bytes), cores [last cores, sorted]}}

    ``tree=True`` adds descendants (a task's children, an mpiexec's ranks): it costs a
    scan of the process table per tick, so it is off for simulation ranks by default.
    ``watch``/``unwatch`` may be called from another thread while the observer ticks.
    """

    name = "processes"

    def __init__(self) -> None:
        self._targets: dict[int, _Target] = {}
        self._lock = threading.Lock()

    def watch(self, pid: int, role: str = "sim", label: str = "", tree: bool = False) -> None:
        """Start watching ``pid``; raises UnknownProcessError when it does not exist."""
        if role not in ROLES:
            raise ObsConfigError("role", role, ", ".join(ROLES))
        try:
            proc = psutil.Process(pid)
            cpu_s, _ = _cpu_seconds(proc, tree)
        except _GONE as exc:
            raise UnknownProcessError(pid) from exc
        target = _Target(proc, role, label or proc.name(), tree, cpu_s)
        with self._lock:
            self._targets = {**self._targets, pid: target}

    def unwatch(self, pid: int) -> None:
        """Stop watching ``pid`` (no error when it is not watched)."""
        with self._lock:
            self._targets = {p: t for p, t in self._targets.items() if p != pid}

    def pids(self) -> dict[int, str]:
        """The watched pids and their roles."""
        return {pid: t.role for pid, t in self._targets.items()}

    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> dict[str, Any]:
        watched: list[dict[str, Any]] = []
        exited: list[int] = []
        for pid, target in self._targets.items():
            row = _read(pid, target, dt)
            if row is None:
                exited.append(pid)
            else:
                watched.append(row)
        return {"watched": watched, "exited": self._forget(exited), "roles": _by_role(watched)}

    def _forget(self, pids: list[int]) -> list[dict[str, Any]]:
        if not pids:
            return []
        with self._lock:
            gone = [self._targets[p] for p in pids if p in self._targets]
            self._targets = {p: t for p, t in self._targets.items() if p not in pids}
        return [
            {"pid": t.proc.pid, "role": t.role, "label": t.label, "cpu_s": round(t.cpu_s, 3)}
            for t in gone
        ]


def _read(pid: int, target: _Target, dt: float) -> dict[str, Any] | None:
    """One watched process's row, or None when it has exited (or its pid was reused)."""
    proc = target.proc
    try:
        if not proc.is_running():
            return None
        with proc.oneshot():
            cpu_s, procs = _cpu_seconds(proc, target.tree)
            status = proc.status()
            if status == psutil.STATUS_ZOMBIE:
                return None
            rss, threads, core = proc.memory_info().rss, proc.num_threads(), proc.cpu_num()
        affinity = proc.cpu_affinity() if hasattr(proc, "cpu_affinity") else []
    except _GONE:
        return None
    # A tree's total dips while an exited child is not yet reaped (its time is in
    # neither process); keeping the total monotonic avoids counting it twice later.
    cpu_s = max(cpu_s, target.cpu_s)
    used, target.cpu_s = cpu_s - target.cpu_s, cpu_s
    return {
        "pid": pid,
        "role": target.role,
        "label": target.label,
        "cpu": round(used / dt, 4) if dt > 0 else 0.0,
        "cpu_s": round(cpu_s, 3),
        "rss": rss,
        "threads": threads,
        "procs": procs,
        "core": core,
        "affinity": affinity,
        "status": status,
    }


def _by_role(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Totals per role: count, cpu (cores), rss (bytes), cores last run on."""
    roles: dict[str, dict[str, Any]] = {}
    for row in rows:
        agg = roles.setdefault(row["role"], {"count": 0, "cpu": 0.0, "rss": 0, "cores": set()})
        agg["count"] += 1
        agg["cpu"] += row["cpu"]
        agg["rss"] += row["rss"]
        agg["cores"].add(row["core"])
    for agg in roles.values():
        agg["cpu"] = round(agg["cpu"], 4)
        agg["cores"] = sorted(agg["cores"])
    return roles
