"""Power sources: RAPL powercap, NVML energy counters, a utilisation model fallback, and
a recorded trace played back (ODOP_POWER_TRACE)."""

from __future__ import annotations

from odop_obs.power.base import PowerSource
from odop_obs.power.model import UtilisationModel
from odop_obs.power.nvml import NvmlPower
from odop_obs.power.rapl import RaplSource
from odop_obs.power.replay import ReplayPower

__all__ = ["NvmlPower", "PowerSource", "RaplSource", "ReplayPower", "UtilisationModel"]
