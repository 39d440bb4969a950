"""WattTime API v3: marginal operating emissions rate (MOER) of a balancing area.

Login: GET {base}/login with HTTP basic auth -> {"token": str} (valid ~30 min).
Forecast: GET {base}/v3/forecast?region=R&signal_type=co2_moer, header
'Authorization: Bearer <token>' -> {"data": [{"point_time": ISO, "value": lbs/MWh}],
"meta": {"data_point_period_seconds": 300, "units": "lbs_co2_per_mwh", ...}}.
Index: GET {base}/v3/signal-index (same shape, value = percentile 0-100).
Conversion: 1 lb/MWh = 453.592 g / 1000 kWh = 0.453592 gCO2/kWh.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import numpy as np

from odop.energy.errors import EnergyConfigError, FetchError, SignalError
from odop.energy.forecast import Forecast, SignalPoint
from odop.energy.signals._http import build_url, http_get
from odop.energy.signals._timefmt import parse_time
from odop.energy.signals.base import SignalProvider
from odop.energy.signals.remote import RemoteSignal
from odop.plugins import GRID_PROVIDERS

WT_BASE_URL = "https://api.watttime.org"
LBS_PER_MWH_TO_G_PER_KWH = 0.453592
TOKEN_LIFETIME_S = 25 * 60.0


def parse_wt_forecast(body: bytes, now: float, name: str = "watttime") -> Forecast:
    """A Forecast in gCO2/kWh from a v3 forecast body in lbs_co2_per_mwh."""
    try:
        payload = json.loads(body)
        rows, meta = payload["data"], payload.get("meta", {})
        times = np.array([parse_time(r["point_time"], name) for r in rows])
        values = np.array([float(r["value"]) for r in rows])
    except (KeyError, TypeError, ValueError) as exc:
        raise SignalError(f"{name}: unexpected payload shape: {exc!r}") from exc
    units = meta.get("units", "lbs_co2_per_mwh")
    if units != "lbs_co2_per_mwh":
        raise SignalError(f"{name}: units {units!r} unsupported; expected 'lbs_co2_per_mwh'")
    if times.size == 0:
        raise SignalError(f"{name}: forecast has no data")
    period = float(meta.get("data_point_period_seconds") or
                   (np.median(np.diff(times)) if times.size > 1 else 300.0))
    return Forecast(times, period, values * LBS_PER_MWH_TO_G_PER_KWH, None, "USD", name, now,
                    {"region": meta.get("region"), "generated_at": meta.get("generated_at")})


@GRID_PROVIDERS.register
class WattTime(RemoteSignal):
    """MOER forecast of ``region`` (e.g. 'CAISO_NORTH') in gCO2/kWh."""

    name = "watttime"

    provider = "watttime"
    required = ("region",)

    @classmethod
    def from_settings(cls, s: Any, *, remote: dict[str, Any],
                      secret: Callable[[str, str | None], str], **_: Any) -> SignalProvider:
        return cls(s.region or "", secret("username_env", None), secret("password_env", None),
                   **remote)

    def __init__(self, region: str, username: str, password: str,
                 base_url: str = WT_BASE_URL, horizon_hours: int = 24, **kwargs: object) -> None:
        if not username or not password:
            raise EnergyConfigError("watttime: username and password are required")
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.region, self.base_url, self.horizon_hours = region, base_url, horizon_hours
        self._basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._token: str | None = None
        self._token_at = 0.0
        self._index: float | None = None

    def _login(self, now: float) -> str:
        body = http_get(self.name, build_url(self.base_url, "login"),
                        {"Authorization": f"Basic {self._basic}"}, self.timeout_s)
        try:
            token = json.loads(body)["token"]
        except (KeyError, TypeError, ValueError) as exc:
            raise SignalError(f"{self.name}: login answered without a token") from exc
        self._token, self._token_at = token, now
        return str(token)

    def _get(self, path: str, now: float) -> bytes:
        params = {"region": self.region, "signal_type": "co2_moer"}
        if path.endswith("forecast"):
            params["horizon_hours"] = str(self.horizon_hours)
        url = build_url(self.base_url, path, params)
        for attempt in range(2):
            if self._token is None or now - self._token_at > TOKEN_LIFETIME_S:
                self._login(now)
            try:
                return http_get(self.name, url, {"Authorization": f"Bearer {self._token}"},
                                self.timeout_s)
            except FetchError as exc:
                if exc.status != 401 or attempt:
                    raise
                self._token = None  # expired token: log in again once
        raise SignalError(f"{self.name}: unreachable")  # pragma: no cover

    def fetch(self, now: float) -> Forecast:
        fc = parse_wt_forecast(self._get("v3/forecast", now), now, self.name)
        try:
            rows = json.loads(self._get("v3/signal-index", now))["data"]
            self._index = float(rows[0]["value"]) if rows else None
        except (SignalError, KeyError, TypeError, ValueError, IndexError):
            self._index = None  # the index is a nicety; the forecast is what matters
        return fc

    def current(self, now: float) -> SignalPoint:
        point = super().current(now)
        if point.source != self.name or self._index is None:
            return point
        return SignalPoint(point.t, point.carbon, point.price, point.currency, point.source,
                           self._index)
