"""One running task: its process group, and the signals and pinning applied to it."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class TaskProcess:
    """A task's leader process; the task is the whole process group (= session) it leads."""

    execution: str
    pid: int
    cores: list[int]
    started: float = field(default_factory=time.monotonic)
    deadline: float | None = None
    """Monotonic time after which the whole tree is killed (the task's time limit)."""
    paused: bool = False
    stopping_since: float | None = None
    reason: str = ""
    memory_max: int | None = None
    """The task's declared memory maximum (bytes), if any."""
    bound: str = ""
    """How that maximum is enforced, in words (a cgroup, sampling, an rlimit)."""

    def signal(self, sig: int) -> bool:
        """Send ``sig`` to the whole process group; False if it is gone."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def pause(self) -> None:
        if self.signal(signal.SIGSTOP):
            self.paused = True

    def resume(self) -> None:
        if self.signal(signal.SIGCONT):
            self.paused = False

    def stop(self, reason: str) -> None:
        """TERM now (and CONT, so a paused task can act on it); KILL follows after grace."""
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
            self.reason = self.reason or reason
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)

    def kill(self, reason: str) -> None:
        self.reason = self.reason or reason
        self.signal(signal.SIGKILL)

    def repin(self, cores: list[int]) -> None:
        """Move every thread of every process in the group to ``cores``, without stopping."""
        for tid in group_threads(self.pid):
            try:
                os.sched_setaffinity(tid, cores)
            except OSError:  # exited meanwhile
                continue
        self.cores = list(cores)


def group_threads(pgid: int) -> Iterable[int]:
    """Thread ids of all processes in process group ``pgid`` (children included)."""
    return threads_of(group_pids(pgid))


def threads_of(pids: Iterable[int]) -> Iterable[int]:
    """Thread ids of the processes ``pids`` (those gone meanwhile are skipped)."""
    for pid in pids:
        try:
            yield from (int(t) for t in os.listdir(f"/proc/{pid}/task"))
        except OSError:
            continue


def group_pids(pgid: int) -> list[int]:
    """Pids whose process group is ``pgid``, read from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids
