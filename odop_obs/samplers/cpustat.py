"""Per-core CPU time counters from /proc/stat, parsed once per tick.

Plain Python, not numpy: a tick handles a few numbers per core (0.3 ms for 128 cores, as
with numpy), and the agent starts without numpy's import, which competes with the ranks
for their cores where none is idle.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import psutil

Times = Sequence[tuple[float, ...]]
"""Per core, the kept columns: user nice system idle iowait irq softirq steal (guest time
is inside user)."""
_COLUMNS = 8
_IDLE, _IOWAIT = 3, 4
_READ_BYTES = 1 << 20


class CpuTimes:
    """Reads cumulative per-core CPU times (clock ticks) for the online cores.

    ``read()`` returns ``(ids, times)``: core ids (ints) and, per core, a tuple of the 8
    kept columns. Uses /proc/stat through one kept-open descriptor where it exists, and
    psutil elsewhere (seconds instead of ticks; only ratios are used).
    """

    def __init__(self, path: str = "/proc/stat") -> None:
        self._fd: int | None = os.open(path, os.O_RDONLY) if os.path.exists(path) else None

    def read(self) -> tuple[list[int], Times]:
        if self._fd is None:
            return self._read_psutil()
        data = os.pread(self._fd, _READ_BYTES, 0)
        start = data.find(b"\ncpu") + 1  # skips the aggregate "cpu " line
        end = data.find(b"\n", data.rfind(b"\ncpu") + 1)
        rows = data[start:end].split(b"\n")
        ids = [int(row[3 : row.index(b" ")]) for row in rows]
        times = [tuple(map(int, row.split()[1 : _COLUMNS + 1])) for row in rows]
        return ids, times

    @staticmethod
    def _read_psutil() -> tuple[list[int], Times]:
        rows = psutil.cpu_times(percpu=True)
        pad = (0.0,) * _COLUMNS  # platforms without iowait/irq columns
        return list(range(len(rows))), [(*tuple(r)[:_COLUMNS], *pad)[:_COLUMNS] for r in rows]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def busy_fractions(prev: Times, cur: Times) -> tuple[list[float], float]:
    """Per-core busy fraction (0..1) and the mean iowait fraction between two reads."""
    busy, iowait, all_ticks = [], 0.0, 0.0
    for p, c in zip(prev, cur, strict=True):
        total = sum(c) - sum(p)
        wait = c[_IOWAIT] - p[_IOWAIT]
        idle = c[_IDLE] - p[_IDLE] + wait
        busy.append(_clip(1.0 - idle / total, 1.0) if total > 0 else 0.0)
        iowait += wait
        all_ticks += total
    return busy, (iowait / all_ticks if all_ticks > 0 else 0.0)


def split_percent(prev: Times, cur: Times) -> dict[str, list[float]]:
    """Per-core percent (0..100) of the time between two reads.

    ``per_core`` busy (not idle, not iowait); ``user`` (user + nice, guests included);
    ``system`` (system + irq + softirq); ``iowait``; ``steal`` (taken by the hypervisor).
    """
    out: dict[str, list[float]] = {k: [] for k in ("per_core", "user", "system", "iowait",
                                                   "steal")}
    for p, c in zip(prev, cur, strict=True):
        d = [b - a for a, b in zip(p, c, strict=True)]
        total = sum(d)
        scale = 100.0 / total if total > 0 else 0.0
        parts = (total - d[_IDLE] - d[_IOWAIT], d[0] + d[1], d[2] + d[5] + d[6],
                 d[_IOWAIT], d[7])
        for values, v in zip(out.values(), parts, strict=True):
            values.append(round(_clip(v * scale, 100.0), 2))
    return out


def _clip(x: float, top: float) -> float:
    return min(max(x, 0.0), top)

