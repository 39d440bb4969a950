"""Grid signal providers against faithful fake servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from odop.energy.errors import FetchError
from odop.energy.signals import (
    ElectricityMaps,
    EntsoePrices,
    ReplaySignal,
    StaticSignal,
    UKCarbonIntensity,
    WattTime,
)
from odop.energy.signals.watttime import LBS_PER_MWH_TO_G_PER_KWH

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
T0 = NOW - NOW % 1800


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(t))


UK_BODY = {"data": [{"from": iso(T0 + i * 1800), "to": iso(T0 + (i + 1) * 1800),
                     "intensity": {"forecast": 100 + i, "actual": 90 if i == 0 else None,
                                   "index": "low"}} for i in range(96)]}
EM_LATEST = {"zone": "DE", "carbonIntensity": 250, "datetime": iso(T0 - T0 % 3600) + "",
             "updatedAt": iso(T0), "emissionFactorType": "lifecycle", "isEstimated": False}
EM_FORECAST = {"zone": "DE", "forecast": [
    {"carbonIntensity": 200 + 10 * i, "datetime": iso(T0 - T0 % 3600 + 3600 * (i + 1))}
    for i in range(24)], "updatedAt": iso(T0)}
WT_FORECAST = {"data": [{"point_time": iso(T0 + 300 * i), "value": 1000.0 - i}
                        for i in range(288)],
               "meta": {"data_point_period_seconds": 300, "region": "CAISO_NORTH",
                        "signal_type": "co2_moer", "units": "lbs_co2_per_mwh",
                        "generated_at": iso(T0)}}
WT_INDEX = {"data": [{"point_time": iso(T0), "value": 42.0}],
            "meta": {"units": "percentile"}}
DAY = NOW - NOW % 86400


def entsoe_xml() -> bytes:
    points = "".join(f"<Point><position>{p}</position><price.amount>{50 + p}</price.amount>"
                     f"</Point>" for p in range(1, 25) if p != 5)  # A03: 5 repeats 4
    q = "".join(f"<Point><position>{p}</position><price.amount>{10 * p}</price.amount></Point>"
                for p in range(1, 97))
    d0, d1, d2 = (time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(DAY + k * 86400))
                  for k in range(3))
    return (f'<?xml version="1.0" encoding="UTF-8"?><Publication_MarketDocument xmlns="urn:'
            f'iec62325.351:tc57wg16:451-3:publicationdocument:7:3"><TimeSeries>'
            f"<currency_Unit.name>EUR</currency_Unit.name><price_Measure_Unit.name>MWH"
            f"</price_Measure_Unit.name><Period><timeInterval><start>{d0}</start><end>{d1}"
            f"</end></timeInterval><resolution>PT60M</resolution>{points}</Period>"
            f"<Period><timeInterval><start>{d1}</start><end>{d2}</end></timeInterval>"
            f"<resolution>PT15M</resolution>{q}</Period></TimeSeries>"
            f"</Publication_MarketDocument>").encode()


class FakeGrid:
    """One server for all four APIs; ``fail`` queues statuses to answer first."""

    def __init__(self) -> None:
        self.fail: list[tuple[int, str | None]] = []
        self.requests: list[tuple[str, dict]] = []
        grid = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                grid.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if grid.fail:
                    code, retry = grid.fail.pop(0)
                    self.send_response(code)
                    if retry:
                        self.send_header("Retry-After", retry)
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                code, body, ctype = grid.route(self.path, self.headers)
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def route(self, path: str, headers) -> tuple[int, bytes, str]:
        parsed = urllib.parse.urlparse(path)
        q = urllib.parse.parse_qs(parsed.query)
        js = "application/json"
        if parsed.path.startswith("/uk/intensity/"):
            return 200, json.dumps(UK_BODY).encode(), js
        if parsed.path.startswith("/em/"):
            if headers.get("auth-token") != "em-token":
                return 401, b'{"error":"auth"}', js
            body = EM_LATEST if parsed.path.endswith("latest") else EM_FORECAST
            return 200, json.dumps(body).encode(), js
        if parsed.path == "/wt/login":
            good = "Basic " + base64.b64encode(b"user:pw").decode()
            if headers.get("Authorization") != good:
                return 403, b"", js
            return 200, json.dumps({"token": "wt-token"}).encode(), js
        if parsed.path.startswith("/wt/v3/"):
            if headers.get("Authorization") != "Bearer wt-token":
                return 401, b"", js
            body = WT_FORECAST if parsed.path.endswith("forecast") else WT_INDEX
            return 200, json.dumps(body).encode(), js
        if parsed.path == "/entsoe":
            if q.get("securityToken") != ["ent-token"]:
                return 401, b"<html>Unauthorized</html>", "text/html"
            assert q["documentType"] == ["A44"]
            return 200, entsoe_xml(), "text/xml"
        return 404, b"", js

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def grid():
    fake = FakeGrid()
    yield fake
    fake.close()


def clock() -> float:
    return NOW


def test_uk_parses_actual_then_forecast(grid):
    sig = UKCarbonIntensity(base_url=grid.url + "/uk", clock=clock)
    assert sig.refresh()
    fc = sig.forecast(NOW, 86400)
    assert fc.resolution_s == 1800 and fc.carbon[0] == 90 and fc.carbon[1] == 101
    assert sig.current(NOW).carbon == 90 and sig.status().serving == "live"
    assert "/uk/intensity/" in grid.requests[0][0] and grid.requests[0][0].endswith("/fw48h")


def test_electricity_maps_auth_and_shape(grid):
    sig = ElectricityMaps("DE", "em-token", base_url=grid.url + "/em", clock=clock)
    assert sig.refresh()
    fc = sig.forecast(NOW, 86400)
    assert fc.resolution_s == 3600 and fc.carbon[0] == 250 and fc.carbon[1] == 200
    assert all(h["auth-token"] == "em-token" for _, h in grid.requests)
    bad = ElectricityMaps("DE", "wrong", base_url=grid.url + "/em", clock=clock)
    assert not bad.refresh() and "401" in bad.status().last_error


def test_watttime_login_converts_lbs_to_grams(grid):
    sig = WattTime("CAISO_NORTH", "user", "pw", base_url=grid.url + "/wt", clock=clock)
    assert sig.refresh()
    fc = sig.forecast(T0, 3600)
    assert fc.resolution_s == 300
    assert fc.carbon[0] == pytest.approx(1000.0 * LBS_PER_MWH_TO_G_PER_KWH)
    assert pytest.approx(0.453592) == LBS_PER_MWH_TO_G_PER_KWH
    assert sig.current(NOW).index == 42.0
    assert grid.requests[0][0] == "/wt/login"
    assert not WattTime("X", "user", "bad", base_url=grid.url + "/wt", clock=clock).refresh()


def test_entsoe_prices_resolutions_and_gaps(grid):
    sig = EntsoePrices("10Y1001A1001A82H", "ent-token", base_url=grid.url + "/entsoe",
                       clock=clock)
    assert sig.refresh()
    fc = sig.forecast(DAY, 2 * 86400)
    assert fc.currency == "EUR" and fc.carbon is None and fc.resolution_s == 900
    assert fc.value_at(DAY + 3 * 3600, "price") == 54  # position 4
    assert fc.value_at(DAY + 4 * 3600 + 1, "price") == 54  # position 5 left out: repeats
    assert fc.value_at(DAY + 86400 + 1, "price") == 10
    assert not EntsoePrices("x", "nope", base_url=grid.url + "/entsoe", clock=clock).refresh()


def test_backoff_retry_after_and_fallback_status(grid):
    grid.fail = [(429, "120"), (500, None), (503, None)]
    sig = UKCarbonIntensity(base_url=grid.url + "/uk", clock=clock, backoff_s=10)
    assert not sig.refresh()
    assert sig.backoff_delay_s() == 120  # Retry-After beats the 10 s first backoff
    st = sig.status()
    assert st.serving == "fallback" and st.degraded and "429" in st.last_error
    assert sig.forecast(NOW, 3600).source == "static"  # fallback serves instantly
    assert not sig.refresh() and sig.backoff_delay_s() == 20
    assert not sig.refresh() and sig.backoff_delay_s() == 40
    assert sig.refresh() and sig.status().serving == "live" and sig.status().failures == 0
    grid.fail = [(500, None)]
    assert not sig.refresh()
    st = sig.status()
    assert st.serving == "cached" and st.degraded and sig.forecast(NOW, 3600).source != "static"


def test_background_fetcher_never_blocks_reads(grid):
    gate = threading.Event()

    class Slow(UKCarbonIntensity):
        def fetch(self, now):
            gate.wait(5)
            return super().fetch(now)

    sig = Slow(base_url=grid.url + "/uk", refresh_s=3600)
    sig.start()
    try:
        t = time.perf_counter()
        fc = sig.forecast(time.time(), 3600)
        assert time.perf_counter() - t < 1.0 and fc.source == "static"
        gate.set()
        for _ in range(100):
            if sig.status().serving != "fallback":
                break
            time.sleep(0.05)
        assert sig.status().age_s is not None
    finally:
        sig.stop()


def test_static_and_replay(tmp_path):
    assert StaticSignal().current(0).carbon == 480.0
    path = tmp_path / "trace.csv"
    path.write_text("time,carbon,price\n0,100,10\n600,200,20\n1800,300,30\n")
    rel = ReplaySignal(path, mode="relative", start_time=NOW, loop=True)
    assert rel.resolution_s == 600 and rel.current(NOW + 700).carbon == 200
    assert rel.current(NOW + 1300).carbon == 200 and rel.current(NOW + 2400 + 10).carbon == 100
    fc = rel.forecast(NOW, 7200)
    assert fc.price is not None and np.all(np.diff(fc.start) == 600)
    js = tmp_path / "trace.json"
    js.write_text(json.dumps({"data": [{"datetime": "2023-11-14T00:00Z", "intensity": 5},
                                       {"datetime": "2023-11-14T01:00Z", "intensity": 7}]}))
    absolute = ReplaySignal(js)
    assert absolute.current(1699920000 + 3700).carbon == 7


def test_fetch_error_has_status():
    err = FetchError("p", "x", 429, 3.0)
    assert err.status == 429 and err.retry_after_s == 3.0 and "HTTP 429" in str(err)
