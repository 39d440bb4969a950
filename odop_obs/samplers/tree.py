"""A watched process's descendants, found without scanning the process table.

Each tick reads ``/proc/<pid>/task/<tid>/children`` of every process already in the
tree (one ``pread`` per thread on kept-open descriptors; a process's thread list is
re-read only when its thread count changes), so the cost grows with the tree, not
with the node. Kernels without that file (CONFIG_PROC_CHILDREN off) fall back to a
psutil scan of the process table.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psutil

from odop_obs.samplers.procstat import ProcStat, ProcStatFile

HAVE_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


@dataclass
class _Node:
    stat: ProcStatFile
    threads: int = -1
    children_fds: list[int] = field(default_factory=list)

    def relist(self, threads: int) -> None:
        """Re-open the children file of each thread (the thread count changed)."""
        self.close_children()
        self.threads = threads
        try:
            tids = os.listdir(f"/proc/{self.stat.pid}/task")
        except OSError:
            return
        for tid in tids:
            try:
                self.children_fds.append(
                    os.open(f"/proc/{self.stat.pid}/task/{tid}/children", os.O_RDONLY))
            except OSError:
                continue

    def children(self) -> set[int]:
        kids: set[int] = set()
        for fd in self.children_fds:
            try:
                kids.update(int(p) for p in os.pread(fd, 65536, 0).split())
            except OSError:
                continue
        return kids

    def close_children(self) -> None:
        for fd in self.children_fds:
            os.close(fd)
        self.children_fds = []


@dataclass(frozen=True, slots=True)
class TreeTotals:
    """Cumulative CPU seconds of the descendants (live ones plus what they reaped)."""

    user_s: float = 0.0
    system_s: float = 0.0
    procs: int = 0  # live descendants


class ProcTree:
    """The live descendants of ``root`` and their cumulative CPU seconds."""

    def __init__(self, root: ProcStatFile) -> None:
        self.root = _Node(root)
        self._nodes: dict[int, _Node] = {}

    def totals(self, root_stat: ProcStat) -> TreeTotals:
        """Walk the tree from the root (whose ``stat`` was just read); CPU in seconds."""
        if not HAVE_CHILDREN or not self.root.stat.on_proc:
            return _scan_totals(self.root.stat.pid)
        seen: set[int] = set()
        user = system = 0.0
        stack = list(self._kids(self.root, root_stat))
        while stack:
            pid = stack.pop()
            if pid in seen:
                continue
            node = self._node(pid)
            st = node.stat.read() if node is not None else None
            if node is None or st is None or st.exited:
                continue
            seen.add(pid)
            user += st.user_s + st.reaped_user_s
            system += st.system_s + st.reaped_system_s
            stack.extend(self._kids(node, st))
        self._drop(set(self._nodes) - seen)
        return TreeTotals(user, system, len(seen))

    def _kids(self, node: _Node, st: ProcStat) -> set[int]:
        if st.threads != node.threads:
            node.relist(st.threads)
        return node.children()

    def _node(self, pid: int) -> _Node | None:
        node = self._nodes.get(pid)
        if node is None:
            try:
                node = self._nodes[pid] = _Node(ProcStatFile(pid))
            except psutil.NoSuchProcess:
                return None
        return node

    def _drop(self, pids: set[int]) -> None:
        for pid in pids:
            node = self._nodes.pop(pid)
            node.close_children()
            node.stat.close()

    def close(self) -> None:
        self._drop(set(self._nodes))
        self.root.close_children()


def _scan_totals(pid: int) -> TreeTotals:
    """The fallback: psutil walks the whole process table."""
    user = system = 0.0
    kids = 0
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return TreeTotals()
    for kid in children:
        try:
            t = kid.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        user += t.user + getattr(t, "children_user", 0.0)
        system += t.system + getattr(t, "children_system", 0.0)
        kids += 1
    return TreeTotals(user, system, kids)
