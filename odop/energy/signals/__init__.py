"""Grid signal providers: carbon intensity (gCO2/kWh) and price (currency/MWh)."""

from __future__ import annotations

from odop.energy.signals.base import SignalProvider, SignalStatus
from odop.energy.signals.electricitymaps import ElectricityMaps
from odop.energy.signals.entsoe import EntsoePrices
from odop.energy.signals.remote import RemoteSignal
from odop.energy.signals.replay import ReplaySignal
from odop.energy.signals.static import DEFAULT_INTENSITY_G_PER_KWH, StaticSignal
from odop.energy.signals.ukci import UKCarbonIntensity
from odop.energy.signals.watttime import WattTime

__all__ = [
    "DEFAULT_INTENSITY_G_PER_KWH", "ElectricityMaps", "EntsoePrices", "RemoteSignal",
    "ReplaySignal", "SignalProvider", "SignalStatus", "StaticSignal", "UKCarbonIntensity",
    "WattTime",
]
