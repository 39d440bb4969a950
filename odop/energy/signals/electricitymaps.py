"""Electricity Maps API v3 (header ``auth-token``; gCO2eq/kWh, hourly).

GET {base}/carbon-intensity/latest?zone=Z -> {"zone", "carbonIntensity", "datetime", ...}
GET {base}/carbon-intensity/forecast?zone=Z ->
{"zone", "forecast": [{"carbonIntensity", "datetime"}, ...], "updatedAt"}.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from odop.energy.errors import EnergyConfigError, SignalError
from odop.energy.forecast import Forecast, resample
from odop.energy.signals._http import build_url, http_get
from odop.energy.signals._timefmt import parse_time
from odop.energy.signals.base import SignalProvider
from odop.energy.signals.remote import RemoteSignal
from odop.plugins import GRID_PROVIDERS

EM_BASE_URL = "https://api.electricitymap.org/v3"


def parse_em_payloads(latest: bytes, forecast: bytes, now: float,
                      name: str = "electricity-maps") -> Forecast:
    """A Forecast from the 'latest' and 'forecast' bodies (latest prepended if earlier)."""
    try:
        last = json.loads(latest)
        rows = json.loads(forecast)["forecast"]
        times = [parse_time(r["datetime"], name) for r in rows]
        values = [float(r["carbonIntensity"]) for r in rows]
        t_last, v_last = parse_time(last["datetime"], name), float(last["carbonIntensity"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SignalError(f"{name}: unexpected payload shape: {exc!r}") from exc
    if not times or t_last < times[0]:
        times.insert(0, t_last)
        values.insert(0, v_last)
    grid, res, vals = resample(np.array(times), np.array(values))
    return Forecast(grid, res, vals, None, "EUR", name, now, {"zone": last.get("zone")})


@GRID_PROVIDERS.register
class ElectricityMaps(RemoteSignal):
    """Carbon intensity of one zone (e.g. 'DE', 'FR', 'US-CAL-CISO')."""

    name = "electricity-maps"

    provider = "electricitymaps"
    required = ("zone",)
    token_env = "ODOP_ELECTRICITYMAPS_TOKEN"
    """Where the API token is read when ``token_env`` is not set (environment variable)."""

    @classmethod
    def from_settings(cls, s: Any, *, remote: dict[str, Any],
                      secret: Callable[[str, str | None], str], **_: Any) -> SignalProvider:
        return cls(s.zone or "", secret("token_env", cls.token_env), **remote)

    def __init__(self, zone: str, token: str, base_url: str = EM_BASE_URL,
                 **kwargs: object) -> None:
        if not token:
            raise EnergyConfigError("electricity-maps: token is required (header auth-token)")
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.zone, self.token, self.base_url = zone, token, base_url

    def fetch(self, now: float) -> Forecast:
        headers = {"auth-token": self.token, "Accept": "application/json"}
        params = {"zone": self.zone}
        latest = http_get(self.name, build_url(self.base_url, "carbon-intensity/latest", params),
                          headers, self.timeout_s)
        fc = http_get(self.name, build_url(self.base_url, "carbon-intensity/forecast", params),
                      headers, self.timeout_s)
        return parse_em_payloads(latest, fc, now, self.name)
