"""Replay a recorded or synthetic time series from a CSV or JSON file.

CSV: a header row with a time column ('t', 'time', 'timestamp', 'datetime' or
'from') and a 'carbon' (gCO2/kWh; aliases 'intensity', 'gco2_per_kwh') and/or 'price'
(currency/MWh) column. JSON: a list of such objects, or {"data": [...]}.
Times are unix seconds or ISO 8601, at any (even irregular) spacing; each value
holds until the next. ``mode='absolute'`` replays the times as they are;
``mode='relative'`` shifts the series so that its first time falls on ``start_time``
(and ``loop=True`` repeats it). The file serves as both the actual signal and a
perfect forecast of it.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from odop.energy.errors import EnergyConfigError, SignalError
from odop.energy.forecast import Forecast, SignalPoint, resample
from odop.energy.signals._timefmt import parse_time
from odop.energy.signals.base import SignalProvider
from odop.plugins import GRID_PROVIDERS

_TIME_KEYS = ("t", "time", "timestamp", "datetime", "from")
_CARBON_KEYS = ("carbon", "intensity", "gco2_per_kwh")
_MODES = ("absolute", "relative")


def _pick(row: dict, keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _read_rows(path: Path) -> list[dict]:
    text = path.read_text()
    if path.suffix.lower() == ".json":
        data = json.loads(text)
        rows = data.get("data") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise SignalError(f"replay {path}: JSON must be a list or {{'data': [...]}}")
        return rows
    return list(csv.DictReader(text.splitlines()))


def load_series(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(times unix s, carbon or None, price or None) from a CSV or JSON file."""
    path = Path(path)
    rows = _read_rows(path)
    if not rows:
        raise SignalError(f"replay {path}: no rows")
    times, carbon, price = [], [], []
    for row in rows:
        t = _pick(row, _TIME_KEYS)
        if t is None:
            raise SignalError(f"replay {path}: row {row!r} has no time ({', '.join(_TIME_KEYS)})")
        times.append(parse_time(t, f"replay {path}"))
        c, p = _pick(row, _CARBON_KEYS), _pick(row, ("price",))
        carbon.append(math.nan if c is None else float(str(c)))
        price.append(math.nan if p is None else float(str(p)))
    c_arr, p_arr = np.array(carbon), np.array(price)
    if np.isnan(c_arr).all() and np.isnan(p_arr).all():
        raise SignalError(f"replay {path}: no carbon or price column")
    return (np.array(times), None if np.isnan(c_arr).all() else c_arr,
            None if np.isnan(p_arr).all() else p_arr)


@GRID_PROVIDERS.register
class ReplaySignal(SignalProvider):
    """A file's series, replayed absolutely or from ``start_time`` (unix s)."""

    provider = "replay"
    required = ("file",)

    @classmethod
    def from_settings(cls, s: Any, *, now: float, **_: Any) -> SignalProvider:
        return cls(s.file or "", mode=s.mode, start_time=now, loop=s.loop)

    def __init__(self, path: str | Path, mode: str = "absolute", start_time: float = 0.0,
                 loop: bool = False, currency: str = "EUR", name: str | None = None) -> None:
        if mode not in _MODES:
            raise EnergyConfigError(f"replay mode {mode!r} is unknown; allowed: {_MODES}")
        times, carbon, price = load_series(path)
        base = np.nan_to_num(carbon if carbon is not None else price)  # type: ignore[arg-type]
        grid, self.resolution_s, _ = resample(times, base)
        self._carbon = None if carbon is None else resample(times, carbon, self.resolution_s)[2]
        self._price = None if price is None else resample(times, price, self.resolution_s)[2]
        offset = start_time - grid[0] if mode == "relative" else 0.0
        self._start = grid + offset
        self.loop, self.currency = loop, currency
        self.name = name or f"replay:{Path(path).name}"

    def _full(self) -> Forecast:
        return Forecast(self._start, self.resolution_s, self._carbon, self._price,
                        self.currency, self.name)

    def _covering(self, t0: float, t1: float) -> Forecast:
        full = self._full()
        if not self.loop:
            return full.window(t0, t1)
        period = full.end - full.start[0]
        first = math.floor((t0 - full.start[0]) / period)
        last = math.floor((t1 - full.start[0]) / period)
        reps = range(first, last + 1)
        start = np.concatenate([full.start + k * period for k in reps])
        tile = len(reps)
        carbon = None if self._carbon is None else np.tile(self._carbon, tile)
        price = None if self._price is None else np.tile(self._price, tile)
        return Forecast(start, self.resolution_s, carbon, price, self.currency,
                        self.name).window(t0, t1)

    def current(self, now: float) -> SignalPoint:
        return self._covering(now, now + self.resolution_s).point(now)

    def forecast(self, now: float, horizon_s: float) -> Forecast:
        fc = self._covering(now, now + horizon_s)
        return Forecast(fc.start, fc.resolution_s, fc.carbon, fc.price, fc.currency,
                        fc.source, now)
