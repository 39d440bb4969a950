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
from odop_obs.samplers.tree import ProcTree

ROLES = ("sim", "task", "odop", "other")


@dataclass
class _Target:
    stat: ProcStatFile
    role: str
    label: str
    tree: ProcTree | None  # set when descendants are counted
    user_s: float = 0.0  # cumulative CPU seconds at the previous sample
    system_s: float = 0.0

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.system_s


def _totals(target: _Target, st: ProcStat) -> tuple[float, float, int]:
    """Cumulative (user, system) CPU seconds of the target (its tree when asked), processes."""
    if target.tree is None:
        return st.user_s, st.system_s, 1
    kids = target.tree.totals(st)
    user = st.user_s + st.reaped_user_s + kids.user_s
    return user, st.system_s + st.reaped_system_s + kids.system_s, 1 + kids.procs


class ProcessSampler(Sampler):
    """Watched processes, registered with ``watch(pid, role, label, tree)``.

    Section ``processes``::

        watched: [{pid, ppid, name, role, label, cpu (cores: CPU seconds per second,
                   may exceed 1), cpu_pct (percent of one core), cpu_s, user_s,
                   system_s (cumulative CPU seconds), rss (bytes), threads, procs,
                   core = cpu_num (last core run on), affinity [cores], state (R, S,
                   D, T ...), ctx_vol, ctx_invol (context switches, cumulative),
                   read_bytes, write_bytes (storage IO, cumulative bytes; None when
                   /proc/<pid>/io is not readable)}]
        exited:  [{pid, role, label, cpu_s}]  reported once, then forgotten
        roles:   {role: {count, cpu (cores), rss (bytes), cores [last cores, sorted]}}

    Top level ``groups``: {label: {cpu_pct, rss, n (processes), cores (affinity union)}}.

    ``tree=True`` adds descendants (a task's children, an mpiexec's ranks), found
    through /proc/<pid>/task/<tid>/children (see samplers/tree.py): cpu, cpu_s,
    user_s, system_s and procs cover the tree; rss, threads, core, context switches
    and IO stay those of the watched process itself.
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
            stat = ProcStatFile(pid)
        except psutil.NoSuchProcess as exc:
            raise UnknownProcessError(pid) from exc
        st = stat.read()
        if st is None or st.exited:
            stat.close()
            raise UnknownProcessError(pid)
        target = _Target(stat, role, label or st.name, ProcTree(stat) if tree else None)
        target.user_s, target.system_s, _ = _totals(target, st)
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

    def top_level(self, section: Mapping[str, Any]) -> dict[str, Any]:
        return {"groups": by_label(section["watched"])}

    def _drop_exited(self, exited: list[_Target]) -> list[_Target]:
        """Forget and close exited targets, unless watch() replaced one meanwhile."""
        with self._lock:
            gone = [t for t in exited if self._targets.get(t.stat.pid) is t]
            self._forget([t.stat.pid for t in gone])
        for target in gone:
            _close(target)
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
            _close(target)

    def close(self) -> None:
        with self._lock:
            self._retired.extend(self._forget(list(self._targets)))
        self._close_retired()


def _close(target: _Target) -> None:
    if target.tree is not None:
        target.tree.close()
    target.stat.close()


def _read(pid: int, target: _Target, dt: float) -> dict[str, Any] | None:
    """One watched process's row, or None once it has exited."""
    st = target.stat.read()
    if st is None or st.exited:
        return None
    user_s, system_s, procs = _totals(target, st)
    # A tree's total dips while an exited child is not yet reaped (its time is in
    # neither process); keeping the total monotonic avoids counting it twice later.
    user_s, system_s = max(user_s, target.user_s), max(system_s, target.system_s)
    used = user_s + system_s - target.cpu_s
    target.user_s, target.system_s = user_s, system_s
    cores = round(used / dt, 4) if dt > 0 else 0.0
    extra = target.stat.extra()
    return {
        "pid": pid, "ppid": st.ppid, "name": st.name, "role": target.role,
        "label": target.label, "cpu": cores, "cpu_pct": round(cores * 100, 2),
        "cpu_s": round(user_s + system_s, 3), "user_s": user_s, "system_s": system_s,
        "rss": st.rss, "threads": st.threads,
        "procs": procs, "core": st.core, "cpu_num": st.core,
        "affinity": target.stat.affinity(), "state": st.state,
        "ctx_vol": extra.ctx_vol, "ctx_invol": extra.ctx_invol,
        "read_bytes": extra.read_bytes, "write_bytes": extra.write_bytes,
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


def by_label(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Totals per label: cpu_pct (percent of one core), rss (bytes), n, cores (affinity)."""
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        agg = groups.setdefault(row["label"], {"cpu_pct": 0.0, "rss": 0, "n": 0, "cores": set()})
        agg["cpu_pct"] += row["cpu_pct"]
        agg["rss"] += row["rss"]
        agg["n"] += row["procs"]
        agg["cores"].update(row["affinity"])
    for agg in groups.values():
        agg["cpu_pct"] = round(agg["cpu_pct"], 2)
        agg["cores"] = sorted(agg["cores"])
    return groups
