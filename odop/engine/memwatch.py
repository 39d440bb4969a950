"""The memory bound where no memory cgroup can be written: the engine samples each
bounded task's processes and kills the task past its maximum.

What is counted is what the task holds that the kernel cannot take back: for each process
of the task's tree (its leader and every descendant, found through
``/proc/<pid>/task/<tid>/children``; the process group where the kernel lacks that file),
``Pss_Anon + Pss_Shmem + SwapPss`` from ``/proc/<pid>/smaps_rollup`` (``Pss`` on kernels
older than 5.8, which lack those lines). PSS splits a page shared by several processes
between them, so the pages a forked task still shares with the fork server, and the
libraries it maps, are not counted whole against it; file pages (page cache, mapped data
files) are not counted at all: the kernel reclaims them.

Reading ``smaps_rollup`` costs about 0.17 ms per process (the kernel walks its page
tables; an 80 MB and a 1 GB process alike, measured here), so on a node without swap the
engine first sums the tree's resident set from ``/proc/<pid>/statm`` (about 10 us a
process): RSS is never below PSS, so a tree whose RSS is under the maximum is under it,
and only a tree past it is read in full. The engine samples each bounded task every
``every_s`` seconds, so a task can overshoot its maximum by what it allocates in that
time before it is killed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from odop.engine.process import group_pids
from odop_obs.samplers.tree import HAVE_CHILDREN

CHECK_S = 0.25
"""Seconds between two samples of a bounded task's memory."""
_FIELDS = (b"Pss_Anon:", b"Pss_Shmem:", b"SwapPss:")
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Watched:
    """One bounded task: its leader's pid and its maximum (bytes)."""

    pid: int
    memory_max: int


class MemoryWatch:
    """Samples the memory of bounded tasks; says which are over their maximum."""

    def __init__(self, every_s: float = CHECK_S, swapless: bool | None = None) -> None:
        self.every_s = every_s
        self.tasks: dict[str, Watched] = {}
        self._next = 0.0
        self.swapless = node_has_no_swap() if swapless is None else swapless
        """RSS bounds what a task holds from above (no swap on this node)."""

    @property
    def how(self) -> str:
        """How the bound is enforced, in words (for reasons and logs)."""
        return f"sampled every {self.every_s:g} s: no writable memory cgroup"

    def add(self, execution: str, pid: int, memory_max: int) -> None:
        self.tasks[execution] = Watched(pid, int(memory_max))

    def remove(self, execution: str) -> None:
        self.tasks.pop(execution, None)

    def over(self, now: float | None = None) -> list[tuple[str, int]]:
        """(execution, bytes held) of each task over its maximum; samples at most once
        per ``every_s`` seconds (an empty list between samples)."""
        now = time.monotonic() if now is None else now
        if not self.tasks or now < self._next:
            return []
        self._next = now + self.every_s
        found = []
        for execution, task in self.tasks.items():
            pids = tree_pids(task.pid)
            if self.swapless and sum(map(resident, pids)) <= task.memory_max:
                continue
            held = sum(map(process_memory, pids))
            if held > task.memory_max:
                found.append((execution, held))
        return found


def node_has_no_swap() -> bool:
    """True when this node has no swap space (``SwapTotal: 0`` in /proc/meminfo)."""
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"SwapTotal:"):
                    return int(line.split()[1]) == 0
    except (OSError, ValueError, IndexError):
        pass
    return False


def tree_pids(root: int) -> list[int]:
    """``root`` and its live descendants (``root`` leads its process group when the kernel
    cannot list children)."""
    if not HAVE_CHILDREN:
        return group_pids(root)
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    stack.extend(int(c) for c in fh.read().split())
            except OSError:
                continue
    return pids


def resident(pid: int) -> int:
    """Resident set of ``pid`` (bytes; 0 for a process that is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return 0


def process_memory(pid: int) -> int:
    """Bytes of anonymous and shared memory ``pid`` holds, shared pages split (PSS);
    0 for a process that is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            text = fh.read()
    except OSError:
        return 0
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(b" ")
        if name in _FIELDS or name == b"Pss:":
            values[name] = int(rest.split()[0]) * 1024  # kB
    if b"Pss_Anon:" in values:
        return sum(values.get(f, 0) for f in _FIELDS)
    return values.get(b"Pss:", 0) + values.get(b"SwapPss:", 0)
