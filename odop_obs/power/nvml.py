"""GPU power from the NVML readings of this tick's ``gpu`` section."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odop_obs.power.base import PowerSource


class NvmlPower(PowerSource):
    """Sum of GPU watts over the node's devices.

    Per device, the mean over the tick from the cumulative energy counter
    (``energy_j``, Volta and newer) when two readings exist, else the instantaneous
    ``power_w``. Reports nothing when the ``gpu`` section says no GPU is available.
    """

    name = "nvml"

    def __init__(self) -> None:
        super().__init__()
        self._prev_j: dict[str, float] = {}

    def read(self, dt: float, sections: Mapping[str, Any]) -> dict[str, float]:
        gpu = sections.get("gpu")
        if not gpu or not gpu.get("available"):
            return {}
        total, seen = 0.0, False
        for dev in gpu["devices"]:
            watts = self._device_watts(dev, dt)
            if watts is not None:
                total, seen = total + watts, True
        return {"gpu": total} if seen else {}

    def _device_watts(self, dev: Mapping[str, Any], dt: float) -> float | None:
        key, energy = str(dev.get("uuid") or dev["index"]), dev.get("energy_j")
        prev = self._prev_j.get(key)
        if energy is not None:
            self._prev_j[key] = energy
            if prev is not None and dt > 0 and energy >= prev:
                return (energy - prev) / dt
        return dev.get("power_w")
