"""System sampler: per-core CPU, memory, disk and network IO, load average."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import psutil

from odop_obs.samplers.base import Sampler
from odop_obs.samplers.cpustat import CpuTimes, busy_fractions

_IO_KEYS = ("disk_read", "disk_write", "net_recv", "net_sent")


def _io_totals() -> tuple[float, float, float, float]:
    """Cumulative (disk read, disk write, net recv, net sent) bytes; zeros where unknown."""
    disk = psutil.disk_io_counters(perdisk=False, nowrap=True)
    net = psutil.net_io_counters(pernic=False, nowrap=True)
    d = (disk.read_bytes, disk.write_bytes) if disk else (0, 0)
    n = (net.bytes_recv, net.bytes_sent) if net else (0, 0)
    return (float(d[0]), float(d[1]), float(n[0]), float(n[1]))


class SystemSampler(Sampler):
    """The node as a whole.

    Section ``system``::

        cpu:  ids [core ids], util [busy fraction 0..1 per core], mean (fraction),
              busy_cores (cores, sum of util), iowait (fraction of all core time)
        mem:  total, available, used (bytes)
        io:   disk_read, disk_write, net_recv, net_sent (bytes/s over the tick)
        load: [1, 5, 15 min load averages]
    """

    name = "system"

    def __init__(self, times: CpuTimes | None = None) -> None:
        self._times = times or CpuTimes()
        self._ids, self._prev = self._times.read()
        self._io_prev = _io_totals()

    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> dict[str, Any]:
        return {"cpu": self._cpu(), "mem": _memory(), "io": self._io(dt), "load": _load()}

    def _cpu(self) -> dict[str, Any]:
        ids, cur = self._times.read()
        if ids != self._ids:  # a core went on/offline: restart the deltas
            self._ids, self._prev = ids, cur
        util, iowait = busy_fractions(self._prev, cur)
        self._prev = cur
        util = np.round(util, 4)
        busy = float(util.sum())
        return {
            "ids": ids,
            "util": util.tolist(),
            "mean": round(busy / max(len(ids), 1), 4),
            "busy_cores": round(busy, 4),
            "iowait": round(iowait, 4),
        }

    def _io(self, dt: float) -> dict[str, float]:
        cur = _io_totals()
        prev, self._io_prev = self._io_prev, cur
        scale = 1.0 / dt if dt > 0 else 0.0
        rates = zip(_IO_KEYS, cur, prev, strict=True)
        return {k: round(max(c - p, 0.0) * scale, 1) for k, c, p in rates}

    def close(self) -> None:
        self._times.close()


def _memory() -> dict[str, int]:
    vm = psutil.virtual_memory()
    return {"total": vm.total, "available": vm.available, "used": vm.used}


def _load() -> list[float]:
    try:
        return [round(x, 3) for x in os.getloadavg()]
    except OSError:  # platforms without a load average
        return [0.0, 0.0, 0.0]
