"""Process sampler: the simulation's ranks on this node, running tasks, odop itself."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from odop_obs.errors import ObsConfigError, UnknownProcessError
from odop_obs.samplers.base import Sampler
from odop_obs.samplers.procstat import ProcStat, ProcStatFile

ROLES = ("sim", "task", "odop", "other")


@dataclass
class _Target:
    stat: ProcStatFile
    role: str
    label: str
    tree: psutil.Process | None  # set when descendants are counted
    cpu_s: float = 0.0  # cumulative CPU seconds at the previous sample


def _descendants_cpu_s(proc: psutil.Process) -> tuple[float, int]:
    """CPU seconds of the live descendants of ``proc`` and how many there are."""
    total, kids = 0.0, 0
    for kid in proc.children(recursive=True):
        try:
            t = kid.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total, kids = total + t.user + t.system, kids + 1
    return total, kids


def _totals(target: _Target, st: ProcStat) -> tuple[float, int]:
    """Cumulative CPU seconds of the target (its tree when asked) and its process count."""
    if target.tree is None:
        return st.cpu_s, 1
    try:
        kids_s, kids = _descendants_cpu_s(target.tree)
    except psutil.NoSuchProcess:
        kids_s, kids = 0.0, 0
    return st.cpu_s + st.reaped_cpu_s + kids_s, 1 + kids


class ProcessSampler(Sampler):
    """Watched processes, registered with ``watch(pid, role, label, tree)``.

    Section ``processes``::

        watched: [{pid, role, label, cpu (cores: CPU seconds per second, may exceed 1),
                   cpu_s (cumulative CPU seconds), rss (bytes), threads, procs,
                   core (last core run on), affinity [cores], state (R, S, D, T ...)}]
        exited:  [{pid, role, label, cpu_s}]  reported once, then forgotten
        roles:   {role: {count, cpu (cores), rss (bytes), cores [last cores, sorted]}}

    ``tree=True`` adds descendants (a task's children, an mpiexec's ranks): it costs a
    scan of the process table per tick, so it is off for simulation ranks by default;
    rss, threads and core stay those of the watched process itself.
    ``watch``/``unwatch`` may be called from another thread while the observer ticks.
    """

    name = "processes"

    def __init__(self) -> None:
        self._targets: dict[int, _Target] = {}
        self._retired: list[_Target] = []  # closed by the sampling thread, never mid-read
        self._lock = threading.Lock()

    def watch(self, pid: int, role: str = "sim", label: str = "", tree: bool = False) -> None:
        """Start watching ``pid``; raises UnknownProcessError when it does not exist."""
        if role not in ROLES:
            raise ObsConfigError("role", role, ", ".join(ROLES))
        try:
            proc = psutil.Process(pid)
            target = _Target(ProcStatFile(pid), role, label or proc.name(), proc if tree else None)
        except psutil.NoSuchProcess as exc:
            raise UnknownProcessError(pid) from exc
        st = target.stat.read()
        if st is None or st.exited:
            target.stat.close()
            raise UnknownProcessError(pid)
        target.cpu_s = _totals(target, st)[0]
        with self._lock:
            if pid in self._targets:
                self._retired.append(self._targets[pid])
            self._targets = {**self._targets, pid: target}

    def unwatch(self, pid: int) -> None:
        """Stop watching ``pid`` (no error when it is not watched)."""
        with self._lock:
            self._retired.extend(self._forget([pid]))

    def pids(self) -> dict[int, str]:
        """The watched pids and their roles."""
        return {pid: t.role for pid, t in self._targets.items()}

    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> dict[str, Any]:
        self._close_retired()
        watched: list[dict[str, Any]] = []
        exited: list[_Target] = []
        for pid, target in self._targets.items():
            row = _read(pid, target, dt)
            if row is None:
                exited.append(target)
            else:
                watched.append(row)
        gone = self._drop_exited(exited) if exited else []
        rows = [{"pid": t.stat.pid, "role": t.role, "label": t.label, "cpu_s": round(t.cpu_s, 3)}
                for t in gone]
        return {"watched": watched, "exited": rows, "roles": _by_role(watched)}

    def _drop_exited(self, exited: list[_Target]) -> list[_Target]:
        """Forget and close exited targets, unless watch() replaced one meanwhile."""
        with self._lock:
            gone = [t for t in exited if self._targets.get(t.stat.pid) is t]
            self._forget([t.stat.pid for t in gone])
        for target in gone:
            target.stat.close()
        return gone

    def _forget(self, pids: list[int]) -> list[_Target]:
        """Drop ``pids`` from the watch list (caller holds the lock); returns their targets."""
        gone = [self._targets[p] for p in pids if p in self._targets]
        self._targets = {p: t for p, t in self._targets.items() if p not in pids}
        return gone

    def _close_retired(self) -> None:
        with self._lock:
            retired, self._retired = self._retired, []
        for target in retired:
            target.stat.close()

    def close(self) -> None:
        with self._lock:
            self._retired.extend(self._forget(list(self._targets)))
        self._close_retired()


def _read(pid: int, target: _Target, dt: float) -> dict[str, Any] | None:
    """One watched process's row, or None once it has exited."""
    st = target.stat.read()
    if st is None or st.exited:
        return None
    cpu_s, procs = _totals(target, st)
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
        "rss": st.rss,
        "threads": st.threads,
        "procs": procs,
        "core": st.core,
        "affinity": target.stat.affinity(),
        "state": st.state,
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
