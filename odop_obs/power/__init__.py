"""Power sources: RAPL powercap, NVML energy counters, a utilisation model fallback."""

from __future__ import annotations

from odop_obs.power.base import PowerSource
from odop_obs.power.model import UtilisationModel
from odop_obs.power.nvml import NvmlPower
from odop_obs.power.rapl import RaplSource

__all__ = ["NvmlPower", "PowerSource", "RaplSource", "UtilisationModel"]
