"""How long the simulation's ranks waited for a CPU: the signal that tasks hurt them.

``/proc/<pid>/schedstat`` holds, per process, its time on a CPU, its time *runnable but
waiting* for one (run delay) and its time slices, in nanoseconds (the sum over its
threads is ``/proc/<pid>/task/*/schedstat``; the leader's line counts the whole process
only on kernels that sum it, so the threads are read). Tasks run at SCHED_IDLE, so a
rank that wakes takes its CPU back at once: a run delay that grows is the ranks being
kept from a CPU — by tasks, by each other, or by anything else on the node.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable


def run_delay_ns(pid: int) -> int | None:
    """Run delay of every thread of ``pid`` so far (ns); None when it is gone."""
    total, found = 0, False
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as fh:
                total += int(fh.read().split()[1])
                found = True
        except (OSError, IndexError, ValueError):
            continue
    return total if found else None


class RunDelay:
    """Cores' worth of waiting of a set of processes between two calls of :meth:`sample`."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}
        self._t: float | None = None

    def sample(self, pids: Iterable[int], now: float | None = None) -> float | None:
        """Run delay since the last call over wall time since then (0.02: the processes
        together waited 2 % of a core's time); None on the first call or without pids."""
        now = time.monotonic() if now is None else now
        seen, waited = {}, 0
        for pid in pids:
            value = run_delay_ns(pid)
            if value is None:
                continue
            seen[pid] = value
            if pid in self._last:
                waited += max(0, value - self._last[pid])
        first, dt = self._t is None, now - (self._t or now)
        self._last, self._t = seen, now
        if first or dt <= 0 or not seen:
            return None
        return waited / 1e9 / dt
