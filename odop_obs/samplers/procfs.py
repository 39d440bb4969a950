"""Node-wide counters read from /proc through kept-open descriptors, psutil elsewhere.

Each reader opens its file once and ``pread``s it from offset 0 per tick (procfs
regenerates the text), so a tick costs one syscall per file and no ``open``.
"""

from __future__ import annotations

import os

import psutil

_SECTOR = 512  # /proc/diskstats counts 512-byte sectors whatever the device's block size


class ProcFile:
    """One /proc file held open; ``read()`` returns its current bytes (b"" if absent)."""

    def __init__(self, path: str, size: int = 1 << 16) -> None:
        self.path, self.size = path, size
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError:
            self._fd = None

    @property
    def present(self) -> bool:
        return self._fd is not None

    def read(self) -> bytes:
        if self._fd is None:
            return b""
        try:
            return os.pread(self._fd, self.size, 0)
        except OSError:
            return b""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def parse_meminfo(data: bytes) -> dict[str, int]:
    """{total, used, available} bytes; used = total - available (not reclaimable)."""
    kib: dict[bytes, int] = {}
    for line in data.split(b"\n"):
        key, _, rest = line.partition(b":")
        if key in (b"MemTotal", b"MemAvailable", b"MemFree"):
            kib[key] = int(rest.split()[0])
    total = kib.get(b"MemTotal", 0) * 1024
    available = kib.get(b"MemAvailable", kib.get(b"MemFree", 0)) * 1024
    return {"total": total, "available": available, "used": total - available}


def parse_loadavg(data: bytes) -> list[float]:
    """[1, 5, 15 minute] load averages."""
    return [float(x) for x in data.split()[:3]]


def physical_disks(sys_block: str = "/sys/block") -> set[str] | None:
    """Whole physical disks (a ``device`` link: no partition, loop, dm or md double count).

    None where /sys/block is absent (then every diskstats row is summed).
    """
    try:
        names = os.listdir(sys_block)
    except OSError:
        return None
    disks = {n for n in names if os.path.exists(os.path.join(sys_block, n, "device"))}
    return disks or set(names)


def parse_diskstats(data: bytes, disks: set[str] | None) -> tuple[int, int]:
    """Cumulative (read, written) bytes of ``disks`` (all rows when None)."""
    read = written = 0
    for line in data.split(b"\n"):
        f = line.split()
        if len(f) < 10 or (disks is not None and f[2].decode() not in disks):
            continue
        read += int(f[5])
        written += int(f[9])
    return read * _SECTOR, written * _SECTOR


def parse_netdev(data: bytes) -> tuple[int, int]:
    """Cumulative (received, sent) bytes over every interface but loopback."""
    rx = tx = 0
    for line in data.split(b"\n")[2:]:
        name, _, rest = line.partition(b":")
        f = rest.split()
        if len(f) < 9 or name.strip() == b"lo":
            continue
        rx += int(f[0])
        tx += int(f[8])
    return rx, tx


class NodeCounters:
    """Memory, load and cumulative disk/network bytes of the node, read per tick."""

    def __init__(self, proc: str = "/proc", sys_block: str = "/sys/block") -> None:
        self._mem = ProcFile(f"{proc}/meminfo", 8192)
        self._load = ProcFile(f"{proc}/loadavg", 256)
        self._disk = ProcFile(f"{proc}/diskstats")
        self._net = ProcFile(f"{proc}/net/dev")
        self._disks = physical_disks(sys_block)

    def memory(self) -> dict[str, int]:
        if not self._mem.present:
            vm = psutil.virtual_memory()
            return {"total": vm.total, "available": vm.available, "used": vm.total - vm.available}
        return parse_meminfo(self._mem.read())

    def load(self) -> list[float]:
        if self._load.present:
            return parse_loadavg(self._load.read())
        try:
            return [round(x, 3) for x in os.getloadavg()]
        except OSError:  # platforms without a load average
            return [0.0, 0.0, 0.0]

    def io(self) -> tuple[float, float, float, float]:
        """Cumulative (disk read, disk write, net recv, net sent) bytes."""
        if self._disk.present and self._net.present:
            read, written = parse_diskstats(self._disk.read(), self._disks)
            rx, tx = parse_netdev(self._net.read())
            return float(read), float(written), float(rx), float(tx)
        d = psutil.disk_io_counters(perdisk=False, nowrap=True)
        n = psutil.net_io_counters(pernic=False, nowrap=True)
        return (float(d.read_bytes) if d else 0.0, float(d.write_bytes) if d else 0.0,
                float(n.bytes_recv) if n else 0.0, float(n.bytes_sent) if n else 0.0)

    def close(self) -> None:
        for f in (self._mem, self._load, self._disk, self._net):
            f.close()
