"""The node as a job sees it: the cores of its cgroup's cpuset and the cgroup's memory limit.

Inside a Slurm job step, a container or a virtual-cluster node, the machine's /proc/stat and
/proc/meminfo describe the whole machine; the process's cgroup says what it may use. Both
cgroup v2 (``cpuset.cpus.effective``, ``memory.max``) and v1 (``cpuset.effective_cpus``,
``memory.limit_in_bytes``) are read; where neither says anything, the machine is the node.
"""

from __future__ import annotations

from pathlib import Path

NO_LIMIT = 1 << 62
"""cgroup v1 writes "no limit" as a huge number (9223372036854771712 bytes)."""


def parse_cpu_list(text: str) -> list[int]:
    """``0-3,8,10-11`` -> ``[0, 1, 2, 3, 8, 10, 11]``."""
    cores: list[int] = []
    for item in text.strip().split(","):
        if item:
            lo, _, hi = item.partition("-")
            cores += range(int(lo), int(hi or lo) + 1)
    return cores


class CgroupLimits:
    """The cores and memory limit of the calling process's cgroups, read at construction
    (cores) and at each call (memory)."""

    def __init__(self, proc_cgroup: Path = Path("/proc/self/cgroup"),
                 root: Path = Path("/sys/fs/cgroup")) -> None:
        self._cpuset: Path | None = None
        self._memory: Path | None = None
        try:
            lines = proc_cgroup.read_text().splitlines()
        except OSError:
            lines = []
        for line in lines:
            _, controllers, path = line.split(":", 2)
            rel = path.lstrip("/")
            if controllers == "":  # v2: one tree
                self._cpuset = self._cpuset or _existing(root / rel, "cpuset.cpus.effective")
                self._memory = self._memory or _existing(root / rel, "memory.max")
            elif "cpuset" in controllers.split(","):
                self._cpuset = _existing(root / "cpuset" / rel, "cpuset.effective_cpus")
            elif "memory" in controllers.split(","):
                self._memory = _existing(root / "memory" / rel, "memory.limit_in_bytes")
        self.cores = self._read_cores()
        """The cpuset's cores, or None when the cgroup does not say."""
        v2 = self._memory is not None and self._memory.name == "memory.max"
        folder = self._memory.parent if self._memory is not None else Path()
        self._usage = folder / ("memory.current" if v2 else "memory.usage_in_bytes")
        self._stat = folder / "memory.stat"
        self._inactive = b"inactive_file " if v2 else b"total_inactive_file "
        """The memory.stat line of the file cache it could give back at once."""

    def _read_cores(self) -> list[int] | None:
        if self._cpuset is None:
            return None
        try:
            return parse_cpu_list(self._cpuset.read_text()) or None
        except (OSError, ValueError):
            return None

    def limit(self) -> int | None:
        """The memory limit in bytes, None when there is none."""
        if self._memory is None:
            return None
        try:
            text = self._memory.read_text().strip()
        except OSError:
            return None
        return None if text == "max" or not text.isdigit() or int(text) >= NO_LIMIT else int(text)

    def memory(self, machine: dict[str, int]) -> dict[str, int]:
        """``machine`` ({total, available, used} bytes from /proc/meminfo) within the limit:
        available is the limit less what the cgroup uses, its inactive file cache excepted."""
        limit = self.limit()
        if limit is None or self._memory is None:
            return machine
        used = self._used()
        total = min(machine["total"], limit)
        available = max(0, min(machine["available"], total - used))
        return {"total": total, "available": available, "used": total - available}

    def _used(self) -> int:
        """Bytes the cgroup holds that it could not give back at once."""
        try:
            usage = int(self._usage.read_bytes())
            stat = self._stat.read_bytes()
        except (OSError, ValueError):
            return 0
        at = stat.find(b"\n" + self._inactive)
        start = 0 if stat.startswith(self._inactive) else at + 1 if at >= 0 else -1
        if start < 0:
            return usage
        line = stat[start + len(self._inactive):stat.find(b"\n", start) % (len(stat) + 1)]
        return max(0, usage - int(line or 0))


def _existing(folder: Path, name: str) -> Path | None:
    path = folder / name
    return path if path.exists() else None
