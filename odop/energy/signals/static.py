"""A constant signal: the default, and the fallback of every remote provider."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from odop.energy.errors import EnergyConfigError
from odop.energy.forecast import Forecast, SignalPoint
from odop.energy.signals.base import SignalProvider
from odop.plugins import GRID_PROVIDERS

#: Assumed carbon intensity when nothing better is configured, gCO2/kWh: the world
#: power-sector average for 2023 reported by Ember (Global Electricity Review 2024).
DEFAULT_INTENSITY_G_PER_KWH = 480.0
DEFAULT_INTENSITY_SOURCE = "Ember Global Electricity Review 2024: world average 2023"


@GRID_PROVIDERS.register
class StaticSignal(SignalProvider):
    """The same value at every instant (gCO2/kWh and/or currency/MWh).

    A flat forecast gives the planner nothing to shift towards, so tasks start now:
    with no grid data odop behaves like a plain scheduler.
    """

    provider = "static"

    @classmethod
    def from_settings(cls, s: Any, *, fallback: SignalProvider, **_: Any) -> SignalProvider:
        return fallback

    def __init__(self, carbon: float | None = DEFAULT_INTENSITY_G_PER_KWH,
                 price: float | None = None, currency: str = "EUR",
                 resolution_s: float = 3600.0, name: str = "static") -> None:
        for label, value in (("carbon", carbon), ("price", price)):
            if value is not None and not math.isfinite(value):
                raise EnergyConfigError(f"static signal {label} = {value!r}; must be finite")
        if carbon is None and price is None:
            raise EnergyConfigError("static signal: carbon or price is required")
        self.carbon, self.price, self.currency = carbon, price, currency
        self.resolution_s, self.name = float(resolution_s), name

    def current(self, now: float) -> SignalPoint:
        return SignalPoint(now, self.carbon, self.price, self.currency, self.name)

    def forecast(self, now: float, horizon_s: float) -> Forecast:
        n = max(1, math.ceil(horizon_s / self.resolution_s))
        start = now + self.resolution_s * np.arange(n)
        carbon = None if self.carbon is None else np.full(n, self.carbon)
        price = None if self.price is None else np.full(n, self.price)
        return Forecast(start, self.resolution_s, carbon, price, self.currency, self.name, now,
                        {"assumption": DEFAULT_INTENSITY_SOURCE})
