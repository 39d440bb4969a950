"""A linear utilisation model of CPU power, the fallback when RAPL cannot be read.

    P_cpu = cores * max_w_per_core * (idle_fraction + (1 - idle_fraction) * u)

where ``u`` is the mean busy fraction of the online cores over the tick (from the
``system`` section). Server power is close to linear in CPU utilisation (Fan, Weber and
Barroso, "Power provisioning for a warehouse-sized computer", ISCA 2007). The defaults,
4 W per core at full load and 30 % of that at idle, match current 64-128 core server
CPUs (225-400 W TDP); pass the node's own figures for anything better than an estimate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odop_obs.errors import ObsConfigError
from odop_obs.power.base import PowerSource


class UtilisationModel(PowerSource):
    """Estimated CPU watts from per-core utilisation; reports the ``cpu`` domain only."""

    name = "model"

    def __init__(self, max_w_per_core: float = 4.0, idle_fraction: float = 0.3) -> None:
        super().__init__()
        if not max_w_per_core > 0:
            raise ObsConfigError("max_w_per_core", max_w_per_core, "watts > 0")
        if not 0 <= idle_fraction <= 1:
            raise ObsConfigError("idle_fraction", idle_fraction, "a fraction in [0, 1]")
        self.max_w_per_core = max_w_per_core
        self.idle_fraction = idle_fraction

    def watts(self, cores: int, mean_util: float) -> float:
        """Modelled CPU watts for ``cores`` online cores at ``mean_util`` (0..1)."""
        scale = self.idle_fraction + (1.0 - self.idle_fraction) * mean_util
        return cores * self.max_w_per_core * scale

    def read(self, dt: float, sections: Mapping[str, Any]) -> dict[str, float]:
        cpu = sections.get("system", {}).get("cpu")
        if not cpu:
            return {}
        return {"cpu": self.watts(len(cpu["ids"]), cpu["mean"])}
