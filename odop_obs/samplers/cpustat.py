"""Per-core CPU time counters from /proc/stat, parsed once per tick into numpy."""

from __future__ import annotations

import os

import numpy as np
import psutil

# Columns kept: user nice system idle iowait irq softirq steal (guest time is inside user).
_COLUMNS = 8
_IDLE, _IOWAIT = 3, 4
_READ_BYTES = 1 << 20


class CpuTimes:
    """Reads cumulative per-core CPU times (clock ticks) for the online cores.

    ``read()`` returns ``(ids, times)``: core ids (ints) and an int64 array of shape
    (cores, 8). Uses /proc/stat through one kept-open descriptor where it exists, and
    psutil elsewhere (seconds instead of ticks; only ratios are used).
    """

    def __init__(self, path: str = "/proc/stat") -> None:
        self._fd: int | None = os.open(path, os.O_RDONLY) if os.path.exists(path) else None

    def read(self) -> tuple[list[int], np.ndarray]:
        if self._fd is None:
            return self._read_psutil()
        data = os.pread(self._fd, _READ_BYTES, 0)
        start = data.find(b"\ncpu") + 1  # skips the aggregate "cpu " line
        end = data.find(b"\n", data.rfind(b"\ncpu") + 1)
        rows = data[start:end].split(b"\n")
        ids = [int(row[3 : row.index(b" ")]) for row in rows]
        times = np.array([row.split()[1 : _COLUMNS + 1] for row in rows], dtype=np.int64)
        return ids, times

    @staticmethod
    def _read_psutil() -> tuple[list[int], np.ndarray]:
        rows = psutil.cpu_times(percpu=True)
        times = np.array([tuple(r)[:_COLUMNS] for r in rows], dtype=np.float64)
        if times.shape[1] < _COLUMNS:  # platforms without iowait/irq columns
            times = np.pad(times, ((0, 0), (0, _COLUMNS - times.shape[1])))
        return list(range(len(rows))), times

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def core_shares(prev: np.ndarray, cur: np.ndarray
                ) -> tuple[np.ndarray, float, dict[str, list[float]]]:
    """Between two reads: the per-core busy fraction (0..1), the mean iowait fraction, and
    the per-core percent (0..100) split: ``per_core`` busy (not idle, not iowait); ``user``
    (user + nice, guests included); ``system`` (system + irq + softirq); ``iowait``;
    ``steal`` (taken by the hypervisor)."""
    delta = (cur - prev).astype(np.float64)
    total = delta.sum(axis=1)
    idle = delta[:, _IDLE] + delta[:, _IOWAIT]
    safe = np.where(total > 0, total, 1.0)
    busy = np.clip(np.where(total > 0, 1.0 - idle / safe, 0.0), 0.0, 1.0)
    all_ticks = float(total.sum())
    iowait = float(delta[:, _IOWAIT].sum() / all_ticks) if all_ticks > 0 else 0.0
    scale = np.where(total > 0, 100.0 / safe, 0.0)
    parts = {
        "per_core": total - idle,
        "user": delta[:, 0] + delta[:, 1],
        "system": delta[:, 2] + delta[:, 5] + delta[:, 6],
        "iowait": delta[:, _IOWAIT],
        "steal": delta[:, 7],
    }
    split = {k: np.round(np.clip(v * scale, 0.0, 100.0), 2).tolist() for k, v in parts.items()}
    return busy, iowait, split
