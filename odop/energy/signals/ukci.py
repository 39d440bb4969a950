"""Great Britain's national Carbon Intensity API (no key; 30-minute slots, gCO2/kWh).

GET {base}/intensity/{from}/fw48h returns
{"data": [{"from": ISO, "to": ISO, "intensity": {"forecast": int, "actual": int|null,
"index": "very low"|...}}]}; the actual value is used where published.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from odop.energy.errors import SignalError
from odop.energy.forecast import Forecast
from odop.energy.signals._http import build_url, http_get
from odop.energy.signals._timefmt import iso_utc, parse_time
from odop.energy.signals.base import SignalProvider
from odop.energy.signals.remote import RemoteSignal
from odop.plugins import GRID_PROVIDERS

UK_BASE_URL = "https://api.carbonintensity.org.uk"


def parse_uk_payload(body: bytes, now: float, name: str = "uk-carbon-intensity") -> Forecast:
    """A Forecast from the API's JSON body."""
    try:
        rows = json.loads(body)["data"]
        starts = [parse_time(r["from"], name) for r in rows]
        ends = [parse_time(r["to"], name) for r in rows]
        values = [r["intensity"]["actual"] if r["intensity"].get("actual") is not None
                  else r["intensity"]["forecast"] for r in rows]
        index = [r["intensity"].get("index") for r in rows]
    except (KeyError, TypeError, ValueError) as exc:
        raise SignalError(f"{name}: unexpected payload shape: {exc!r}") from exc
    if not rows:
        raise SignalError(f"{name}: payload has no data")
    resolution = float(np.median(np.array(ends) - np.array(starts)))
    return Forecast(np.array(starts), resolution, np.array(values, dtype=float), None, "GBP",
                    name, now, {"index": index})


@GRID_PROVIDERS.register
class UKCarbonIntensity(RemoteSignal):
    """National GB forecast, 48 h ahead, refreshed in the background."""

    name = "uk-carbon-intensity"

    provider = "ukci"

    @classmethod
    def from_settings(cls, s: Any, *, remote: dict[str, Any], **_: Any) -> SignalProvider:
        return cls(**remote)

    def __init__(self, base_url: str = UK_BASE_URL, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.base_url = base_url

    def fetch(self, now: float) -> Forecast:
        url = build_url(self.base_url, f"intensity/{iso_utc(now)}/fw48h")
        body = http_get(self.name, url, {"Accept": "application/json"}, self.timeout_s)
        return parse_uk_payload(body, now, self.name)
