"""System sampler: per-core CPU, memory, disk and network IO, load average."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from odop_obs.samplers.base import Sampler
from odop_obs.samplers.cgroup import CgroupLimits
from odop_obs.samplers.cpustat import CpuTimes, core_shares
from odop_obs.samplers.procfs import NodeCounters

_IO_KEYS = ("disk_read", "disk_write", "net_recv", "net_sent")


class SystemSampler(Sampler):
    """The node as a whole, as this process's cgroup sees it: the cores of its cpuset, and
    memory within its limit (:class:`CgroupLimits`; the machine where the cgroup says
    nothing).

    Section ``system``::

        cpu:  ids [core ids], util [busy fraction 0..1 per core], mean (fraction),
              busy_cores (cores, sum of util), iowait (fraction of all core time)
        mem:  total, available, used (bytes; used = total - available)
        io:   disk_read, disk_write, net_recv, net_sent (bytes/s over the tick)
        load: [1, 5, 15 min load averages]

    Top level (the flat view): ``cpu`` {per_core, user, system, iowait, steal: percent
    0..100 per core, in ``ids`` order}, ``memory`` (= mem), ``load``, ``disk``
    {read_bps, write_bps}, ``net`` {rx_bps, tx_bps} (bytes/s).
    """

    name = "system"

    def __init__(self, times: CpuTimes | None = None, node: NodeCounters | None = None,
                 limits: CgroupLimits | None = None) -> None:
        self._times = times or CpuTimes()
        self._node = node or NodeCounters()
        self._limits = limits or CgroupLimits()
        self._all_ids: list[int] = []
        self._rows = np.zeros(0, dtype=np.intp)
        self._kept: list[int] = []
        """The cpuset's cores among ``_all_ids``, as the rows pick them."""
        self._ids, self._prev = self._read()
        self._io_prev = self._node.io()
        self._split: dict[str, list[float]] = {}

    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> dict[str, Any]:
        return {"cpu": self._cpu(), "mem": self._limits.memory(self._node.memory()),
                "io": self._io(dt),
                "load": self._node.load()}

    def top_level(self, section: Mapping[str, Any]) -> dict[str, Any]:
        io = section["io"]
        return {
            "cpu": self._split,
            "memory": section["mem"],
            "load": section["load"],
            "disk": {"read_bps": io["disk_read"], "write_bps": io["disk_write"]},
            "net": {"rx_bps": io["net_recv"], "tx_bps": io["net_sent"]},
        }

    def _read(self) -> tuple[list[int], np.ndarray]:
        """The cpuset's cores and their times (every core when the cgroup says nothing)."""
        ids, times = self._times.read()
        if self._limits.cores is None:
            return ids, times
        if ids != self._all_ids:  # first read, or a core went on/offline
            self._all_ids = ids
            wanted = set(self._limits.cores)
            self._rows = np.array([i for i, c in enumerate(ids) if c in wanted], dtype=np.intp)
            self._kept = [ids[i] for i in self._rows]
        return self._kept, times[self._rows]

    def _cpu(self) -> dict[str, Any]:
        ids, cur = self._read()
        if ids != self._ids:  # a core went on/offline: restart the deltas
            self._ids, self._prev = ids, cur
        util, iowait, self._split = core_shares(self._prev, cur)
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
        cur = self._node.io()
        prev, self._io_prev = self._io_prev, cur
        scale = 1.0 / dt if dt > 0 else 0.0
        rates = zip(_IO_KEYS, cur, prev, strict=True)
        return {k: round(max(c - p, 0.0) * scale, 1) for k, c, p in rates}

    def close(self) -> None:
        self._times.close()
        self._node.close()
