"""Grid signal values: one point now, and a forecast of piecewise-constant slots.

Units: times are unix seconds, carbon intensity is gCO2/kWh, price is
``currency``/MWh (EUR unless a provider says otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from odop.energy.errors import EnergyConfigError

KINDS = ("carbon", "price")


@dataclass(frozen=True)
class SignalPoint:
    """The signal at one instant: ``carbon`` in gCO2/kWh, ``price`` in currency/MWh."""

    t: float
    carbon: float | None = None
    price: float | None = None
    currency: str = "EUR"
    source: str = "static"
    index: str | float | None = None  # provider's own band (UK index, WattTime percentile)


@dataclass(frozen=True, eq=False)
class Forecast:
    """Contiguous slots: slot i holds its value over [start[i], start[i] + resolution_s).

    Outside the slots the signal is held: the first value before, the last after.
    """

    start: np.ndarray
    resolution_s: float
    carbon: np.ndarray | None = None
    price: np.ndarray | None = None
    currency: str = "EUR"
    source: str = "static"
    issued_at: float = 0.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        start = np.asarray(self.start, dtype=float)
        object.__setattr__(self, "start", start)
        if start.ndim != 1 or start.size == 0:
            raise EnergyConfigError(
                f"forecast from {self.source}: needs >= 1 slot, got {start.size}")
        if not self.resolution_s > 0:
            raise EnergyConfigError(f"forecast resolution_s = {self.resolution_s!r}; must be > 0 s")
        if self.carbon is None and self.price is None:
            raise EnergyConfigError(f"forecast from {self.source}: carbon or price is required")
        for kind in KINDS:
            values = getattr(self, kind)
            if values is not None:
                values = np.asarray(values, dtype=float)
                if values.shape != start.shape:
                    raise EnergyConfigError(
                        f"forecast {kind}: {values.size} values for {start.size} slots")
                object.__setattr__(self, kind, values)

    @property
    def end(self) -> float:
        """End of the last slot (unix s)."""
        return float(self.start[-1] + self.resolution_s)

    def values(self, kind: str = "carbon") -> np.ndarray:
        """The slot values of ``kind`` ('carbon' or 'price')."""
        if kind not in KINDS:
            raise EnergyConfigError(f"signal kind {kind!r} is unknown; allowed: {', '.join(KINDS)}")
        values = getattr(self, kind)
        if values is None:
            raise EnergyConfigError(f"forecast from {self.source} has no {kind} values")
        return values

    def has(self, kind: str) -> bool:
        """Whether the forecast carries ``kind`` values."""
        return getattr(self, kind, None) is not None

    def value_at(self, t: float, kind: str = "carbon") -> float:
        """The value in force at unix time ``t`` (held outside the slots)."""
        idx = int(np.clip((t - self.start[0]) // self.resolution_s, 0, self.start.size - 1))
        return float(self.values(kind)[idx])

    def point(self, t: float) -> SignalPoint:
        """The SignalPoint at ``t``."""
        carbon = self.value_at(t, "carbon") if self.carbon is not None else None
        price = self.value_at(t, "price") if self.price is not None else None
        return SignalPoint(t, carbon, price, self.currency, self.source)

    def mean_over(self, t0: float, t1: float, kind: str = "carbon") -> float:
        """Time-weighted mean of the signal over [t0, t1] (partial slots weighted exactly)."""
        if t1 <= t0:
            return self.value_at(t0, kind)
        return float(integrate(self, np.array([t0]), np.array([t1]), kind)[0] / (t1 - t0))

    def window(self, t0: float, t1: float) -> Forecast:
        """The slots that overlap [t0, t1) (at least the slot in force at ``t0``)."""
        i0 = int(np.clip((t0 - self.start[0]) // self.resolution_s, 0, self.start.size - 1))
        last = np.ceil((t1 - self.start[0]) / self.resolution_s)
        i1 = int(np.clip(last, i0 + 1, self.start.size))
        sl = slice(i0, i1)
        return Forecast(self.start[sl], self.resolution_s,
                        None if self.carbon is None else self.carbon[sl],
                        None if self.price is None else self.price[sl],
                        self.currency, self.source, self.issued_at, dict(self.meta))


def cumulative(forecast: Forecast, kind: str = "carbon") -> np.ndarray:
    """C[i] = integral of the signal from start[0] to slot boundary i (value x seconds)."""
    values = forecast.values(kind)
    out = np.empty(values.size + 1)
    out[0] = 0.0
    np.cumsum(values * forecast.resolution_s, out=out[1:])
    return out


def integral_to(forecast: Forecast, t: np.ndarray, cum: np.ndarray, kind: str = "carbon"
                ) -> np.ndarray:
    """Integral of the signal from start[0] to each time in ``t`` (held outside the slots)."""
    values = forecast.values(kind)
    rel = np.asarray(t, dtype=float) - forecast.start[0]
    idx = np.clip(np.floor(rel / forecast.resolution_s).astype(np.int64), 0, values.size - 1)
    return cum[idx] + values[idx] * (rel - idx * forecast.resolution_s)


def integrate(forecast: Forecast, t0: np.ndarray, t1: np.ndarray, kind: str = "carbon"
              ) -> np.ndarray:
    """Integral of the signal over each [t0, t1] (value x seconds), vectorised."""
    cum = cumulative(forecast, kind)
    return integral_to(forecast, t1, cum, kind) - integral_to(forecast, t0, cum, kind)


def resample(times: np.ndarray, values: np.ndarray, resolution_s: float | None = None
             ) -> tuple[np.ndarray, float, np.ndarray]:
    """Step-hold irregular samples onto a uniform grid (default: the smallest spacing).

    Returns (slot starts, resolution in s, values); each sample holds until the next.
    """
    order = np.argsort(times, kind="stable")
    times, values = np.asarray(times, float)[order], np.asarray(values, float)[order]
    diffs = np.diff(times)
    diffs = diffs[diffs > 0]
    if resolution_s is None:
        resolution_s = float(diffs.min()) if diffs.size else 3600.0
    if diffs.size and np.allclose(diffs, resolution_s) and diffs.size == times.size - 1:
        return times, resolution_s, values
    grid = np.arange(times[0], times[-1] + resolution_s / 2, resolution_s)
    idx = np.searchsorted(times, grid + 1e-9, side="right") - 1
    return grid, resolution_s, values[np.clip(idx, 0, values.size - 1)]
