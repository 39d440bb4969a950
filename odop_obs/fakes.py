"""Faithful fakes of what a CI machine lacks: NVML with GPUs, a RAPL powercap tree.

The real samplers run unchanged against them (``GpuSampler(nvml=FakeNvml(...))``,
``RaplSource(root=tmp)``); tests and demos of odop use them on machines without GPUs
or readable RAPL counters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any


class NVMLError(Exception):
    """Stands for pynvml.NVMLError (the root of every NVML failure)."""


class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's name)
    """The device does not support this query."""


@dataclass
class FakeGpu:
    """One device: utilisation in percent, memory in bytes, power in watts."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = "GPU-00000000-0000-0000-0000-000000000000"
    util: int = 0
    mem_util: int = 0
    mem_total: int = 80 * 2**30
    mem_used: int = 0
    power_w: float = 70.0
    power_limit_w: float = 700.0
    temp_c: int = 35
    sm_clock_mhz: int = 1980
    mem_clock_mhz: int = 2619
    energy_mj: int | None = 0  # None: the device has no energy counter (pre-Volta)
    procs: list[tuple[int, int]] = field(default_factory=list)  # (pid, bytes)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass at the current power: the energy counter grows."""
        if self.energy_mj is not None:
            self.energy_mj += int(self.power_w * seconds * 1000)


class FakeNvml:
    """The subset of the pynvml module the GPU sampler calls, over FakeGpu devices."""

    NVMLError = NVMLError
    NVML_TEMPERATURE_GPU = 0
    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, gpus: list[FakeGpu] | None = None, init_error: str = "") -> None:
        self.gpus = list(gpus or [])
        self.init_error = init_error
        self.initialised = False

    def nvmlInit(self) -> None:  # noqa: N802 (pynvml's names below)
        if self.init_error:
            raise NVMLError(self.init_error)
        self.initialised = True

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.initialised = False

    def _gpu(self, handle: Any) -> FakeGpu:
        if not self.initialised:
            raise NVMLError("Uninitialized")
        return self.gpus[handle]

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus) if self.initialised else 0

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        self._gpu(index)
        return index

    def nvmlDeviceGetName(self, h: int) -> str:  # noqa: N802
        return self._gpu(h).name

    def nvmlDeviceGetUUID(self, h: int) -> str:  # noqa: N802
        return self._gpu(h).uuid

    def nvmlDeviceGetUtilizationRates(self, h: int) -> Any:  # noqa: N802
        g = self._gpu(h)
        return SimpleNamespace(gpu=g.util, memory=g.mem_util)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> Any:  # noqa: N802
        g = self._gpu(h)
        return SimpleNamespace(total=g.mem_total, used=g.mem_used, free=g.mem_total - g.mem_used)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:  # noqa: N802
        return int(self._gpu(h).power_w * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:  # noqa: N802
        return int(self._gpu(h).power_limit_w * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:  # noqa: N802
        energy = self._gpu(h).energy_mj
        if energy is None:
            raise NVMLError_NotSupported("Not Supported")
        return energy

    def nvmlDeviceGetTemperature(self, h: int, sensor: int) -> int:  # noqa: N802
        return self._gpu(h).temp_c

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:  # noqa: N802
        g = self._gpu(h)
        return g.sm_clock_mhz if clock == self.NVML_CLOCK_SM else g.mem_clock_mhz

    def nvmlDeviceGetComputeRunningProcesses(self, h: int) -> list[Any]:  # noqa: N802
        return [SimpleNamespace(pid=p, usedGpuMemory=m) for p, m in self._gpu(h).procs]


@dataclass
class FakeZone:
    """One powercap zone: its directory name, RAPL name and counter (microjoules)."""

    directory: str
    name: str
    energy_uj: int = 0
    max_uj: int = 262143328850


def write_powercap(root: str | os.PathLike[str], zones: list[FakeZone]) -> Path:
    """Lay out a powercap tree like /sys/class/powercap under ``root``; returns it."""
    base = Path(root)
    for zone in zones:
        folder = base / zone.directory
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "name").write_text(zone.name + "\n")
        (folder / "max_energy_range_uj").write_text(f"{zone.max_uj}\n")
        set_energy(base, zone)
    return base


def set_energy(root: str | os.PathLike[str], zone: FakeZone) -> None:
    """Write ``zone.energy_uj`` to its counter file (in place, as sysfs does)."""
    path = Path(root) / zone.directory / "energy_uj"
    with open(path, "r+" if path.exists() else "w") as f:
        f.write(f"{zone.energy_uj}\n")
        f.truncate()


def server_zones() -> list[FakeZone]:
    """A two-socket server: packages, their core and dram subzones, the mmio duplicate."""
    return [
        FakeZone("intel-rapl:0", "package-0"),
        FakeZone("intel-rapl:0:0", "core"),
        FakeZone("intel-rapl:0:1", "dram"),
        FakeZone("intel-rapl:1", "package-1"),
        FakeZone("intel-rapl:1:0", "dram"),
        FakeZone("intel-rapl-mmio:0", "package-0"),
    ]
