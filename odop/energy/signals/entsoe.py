"""ENTSO-E Transparency Platform: day-ahead prices (document A44), EUR/MWh.

GET {base}?securityToken=T&documentType=A44&in_Domain=EIC&out_Domain=EIC
&periodStart=yyyyMMddHHmm&periodEnd=yyyyMMddHHmm returns a
Publication_MarketDocument: TimeSeries (currency_Unit.name, price_Measure_Unit.name)
> Period > timeInterval(start, end), resolution (PT60M, PT15M, ...), Point(position,
price.amount). Positions left out (curve type A03) repeat the previous price. Without
data the API answers an Acknowledgement_MarketDocument whose Reason text is reported.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np

from odop.energy.errors import EnergyConfigError, SignalError
from odop.energy.forecast import Forecast, resample
from odop.energy.signals._http import build_url, http_get
from odop.energy.signals._timefmt import parse_time
from odop.energy.signals.base import SignalProvider
from odop.energy.signals.remote import RemoteSignal
from odop.energy.signals.static import StaticSignal
from odop.plugins import GRID_PROVIDERS

ENTSOE_BASE_URL = "https://web-api.tp.entsoe.eu/api"
#: Flat placeholder price (EUR/MWh) served while no day-ahead data is available: a flat
#: signal defers nothing; accounting labels it 'static-price'.
FALLBACK_PRICE = 100.0
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def duration_s(text: str) -> float:
    """Seconds in an ISO 8601 duration such as PT60M, PT15M, PT1H or P1D."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise SignalError(f"entso-e: resolution {text!r} is not an ISO 8601 duration")
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return days * 86400.0 + hours * 3600.0 + minutes * 60.0


def _strip_ns(root: ET.Element) -> None:
    for el in root.iter():
        el.tag = el.tag.rsplit("}", 1)[-1]


def _period_points(period: ET.Element, name: str) -> tuple[list[float], list[float]]:
    start = parse_time(period.findtext("timeInterval/start", ""), name)
    end = parse_time(period.findtext("timeInterval/end", ""), name)
    res = duration_s(period.findtext("resolution", ""))
    prices: dict[int, float] = {}
    for point in period.findall("Point"):
        prices[int(point.findtext("position", "0"))] = float(point.findtext("price.amount", "nan"))
    if not prices:
        return [], []
    count = int(round((end - start) / res))
    times, values, last = [], [], prices[min(prices)]
    for pos in range(1, count + 1):
        last = prices.get(pos, last)
        times.append(start + (pos - 1) * res)
        values.append(last)
    return times, values


def parse_entsoe_xml(body: bytes, now: float, name: str = "entso-e") -> Forecast:
    """A price Forecast (currency/MWh) from a Publication_MarketDocument."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SignalError(f"{name}: response is not XML: {exc}") from exc
    _strip_ns(root)
    if root.tag == "Acknowledgement_MarketDocument":
        raise SignalError(f"{name}: no data: {root.findtext('Reason/text', '?')}")
    times: list[float] = []
    values: list[float] = []
    currency = "EUR"
    for series in root.findall("TimeSeries"):
        currency = series.findtext("currency_Unit.name", currency)
        unit = series.findtext("price_Measure_Unit.name", "MWH")
        if unit.upper() != "MWH":
            raise SignalError(f"{name}: price unit {unit!r} unsupported; expected MWH")
        for period in series.findall("Period"):
            t, v = _period_points(period, name)
            times += t
            values += v
    if not times:
        raise SignalError(f"{name}: document has no price points")
    t_arr, v_arr = np.array(times), np.array(values)
    _, first = np.unique(t_arr, return_index=True)  # overlapping series: keep the first
    grid, res, vals = resample(t_arr[first], v_arr[first])
    return Forecast(grid, res, None, vals, currency, name, now)


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y%m%d%H00")


@GRID_PROVIDERS.register
class EntsoePrices(RemoteSignal):
    """Day-ahead prices of one bidding zone (EIC code, e.g. '10Y1001A1001A82H' DE-LU)."""

    name = "entso-e"

    provider = "entsoe"
    required = ("domain",)
    token_env = "ODOP_ENTSOE_TOKEN"
    """Where the API token is read when ``token_env`` is not set (environment variable)."""

    @classmethod
    def from_settings(cls, s: Any, *, remote: dict[str, Any],
                      secret: Callable[[str, str | None], str], **_: Any) -> SignalProvider:
        remote = {**remote, "fallback": StaticSignal(carbon=None, price=s.price or
                                                     FALLBACK_PRICE, name="static-price")}
        return cls(s.domain or "", secret("token_env", cls.token_env), **remote)

    def __init__(self, domain: str, token: str, base_url: str = ENTSOE_BASE_URL,
                 horizon_s: float = 2 * 86400.0, **kwargs: object) -> None:
        if not token:
            raise EnergyConfigError("entso-e: token is required (query securityToken)")
        kwargs.setdefault("refresh_s", 3600.0)
        kwargs.setdefault("fallback", StaticSignal(carbon=None, price=FALLBACK_PRICE,
                                                   name="static-price"))
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.domain, self.token, self.base_url, self.horizon_s = domain, token, base_url, horizon_s

    def fetch(self, now: float) -> Forecast:
        day = now - now % 86400.0
        params = {"securityToken": self.token, "documentType": "A44",
                  "in_Domain": self.domain, "out_Domain": self.domain,
                  "periodStart": _stamp(day), "periodEnd": _stamp(day + self.horizon_s)}
        body = http_get(self.name, build_url(self.base_url, "", params), None, self.timeout_s)
        return parse_entsoe_xml(body, now, self.name)
