"""GPU sampler over NVML (``pynvml`` from nvidia-ml-py). No GPU is a normal state."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any

from odop_obs.samplers.base import Sampler


def load_nvml() -> tuple[Any | None, str]:
    """Import pynvml and initialise NVML; returns (module, "") or (None, reason)."""
    try:
        import pynvml
    except ImportError:
        return None, "pynvml (nvidia-ml-py) is not installed"
    return init_nvml(pynvml)


def init_nvml(nvml: ModuleType | Any) -> tuple[Any | None, str]:
    """Initialise an NVML module; returns (module, "") or (None, reason)."""
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None, f"NVML unavailable: {exc}"
    return nvml, ""


class GpuSampler(Sampler):
    """Every NVIDIA GPU of the node, read through NVML handles opened once.

    Section ``gpu``::

        available: bool, reason: str (why not, when not)
        devices: [{index, uuid, name, util (fraction 0..1), mem_util (fraction),
                   mem_used, mem_total (bytes), power_w (watts), power_limit_w (watts),
                   energy_j (cumulative joules since driver load, None if unsupported),
                   temp_c (Celsius), sm_clock_mhz, mem_clock_mhz (MHz),
                   procs [{pid, mem (bytes)}]}]

    Top level: ``gpus`` (the same device list) and ``gpus_reason`` (None when there
    are devices, else why not: "pynvml (nvidia-ml-py) is not installed", "NVML
    unavailable: <NVML error>", "NVML found no GPU").

    A reading the device does not support is None. ``nvml`` may be given (a fake in
    tests); by default pynvml is imported and initialised here.
    """

    name = "gpu"

    def __init__(self, nvml: Any | None = None) -> None:
        self._nvml: Any
        self._nvml, self._reason = init_nvml(nvml) if nvml is not None else load_nvml()
        self._static: list[dict[str, Any]] = []
        self._handles: list[Any] = []
        if self._nvml is not None:
            self._open_devices()

    @property
    def available(self) -> bool:
        return self._nvml is not None and bool(self._handles)

    def _open_devices(self) -> None:
        nvml = self._nvml
        count = self._call(nvml.nvmlDeviceGetCount) or 0
        for index in range(count):
            handle = self._call(nvml.nvmlDeviceGetHandleByIndex, index)
            if handle is None:  # a lost or inaccessible device: leave it out
                continue
            limit_mw = self._call(nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
            mem = self._call(nvml.nvmlDeviceGetMemoryInfo, handle)
            self._handles.append(handle)
            self._static.append({
                "index": index,
                "uuid": _text(self._call(nvml.nvmlDeviceGetUUID, handle)),
                "name": _text(self._call(nvml.nvmlDeviceGetName, handle)),
                "mem_total": mem.total if mem is not None else None,
                "power_limit_w": limit_mw / 1000.0 if limit_mw is not None else None,
            })
        if not self._handles:
            self._reason = "NVML found no GPU"

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call an NVML function; None when the device does not support it or fails."""
        try:
            return fn(*args)
        except self._nvml.NVMLError:
            return None

    def top_level(self, section: Mapping[str, Any]) -> dict[str, Any]:
        """``gpus`` (the device list) and ``gpus_reason`` (None, or why the list is empty)."""
        return {"gpus": section["devices"], "gpus_reason": section["reason"] or None}

    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> dict[str, Any]:
        if not self.available:
            return {"available": False, "reason": self._reason, "devices": []}
        devices = [self._device(h, s) for h, s in zip(self._handles, self._static, strict=True)]
        return {"available": True, "reason": "", "devices": devices}

    def _device(self, handle: Any, static: dict[str, Any]) -> dict[str, Any]:
        nvml, call = self._nvml, self._call
        util = call(nvml.nvmlDeviceGetUtilizationRates, handle)
        mem = call(nvml.nvmlDeviceGetMemoryInfo, handle)
        power_mw = call(nvml.nvmlDeviceGetPowerUsage, handle)
        energy_mj = call(nvml.nvmlDeviceGetTotalEnergyConsumption, handle)
        procs = call(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
        return {
            **static,
            "util": util.gpu / 100.0 if util is not None else None,
            "mem_util": util.memory / 100.0 if util is not None else None,
            "mem_used": mem.used if mem is not None else None,
            "power_w": power_mw / 1000.0 if power_mw is not None else None,
            "energy_j": energy_mj / 1000.0 if energy_mj is not None else None,
            "temp_c": call(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
            "sm_clock_mhz": call(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_SM),
            "mem_clock_mhz": call(nvml.nvmlDeviceGetClockInfo, handle, nvml.NVML_CLOCK_MEM),
            "procs": [{"pid": p.pid, "mem": p.usedGpuMemory} for p in procs],
        }

    def close(self) -> None:
        if self._nvml is not None:
            self._call(self._nvml.nvmlShutdown)
            self._nvml, self._handles = None, []
            self._reason = "closed"


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
