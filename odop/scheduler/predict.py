"""Idle prediction: each core's utilisation over the next window, from its recent history
and the period of the simulation's busy/idle phases.

The period is found by autocorrelation (FFT) of each core's utilisation, averaged over the
cores that vary (cores may alternate, so the node's mean can hide it); with a
period, the forecast repeats what happened one period ago (a seasonal forecast), else it
holds the recent level. Every one-sample-ahead forecast is checked against the sample that
follows, and the share of cores classified right (idle or busy) is the accuracy recorded
in the run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_PERIODS = 3
"""A period is trusted only after this many repetitions are in the history."""


def detect_period(series: np.ndarray, min_lag: int = 2, min_corr: float = 0.5) -> int | None:
    """The dominant period (in samples) of ``series`` ([samples] or [samples, cores]),
    or None when it is not periodic."""
    x = np.asarray(series, dtype=float)
    x = (x[:, None] if x.ndim == 1 else x) - x.mean(axis=0)
    n = x.shape[0]
    varying = np.any(np.abs(x) > 1e-9, axis=0)
    if n < 2 * min_lag * MIN_PERIODS or not varying.any():
        return None
    spectrum = np.fft.rfft(x[:, varying], 2 * n, axis=0)
    acfs = np.fft.irfft(spectrum * np.conj(spectrum), axis=0)[:n]
    acf = (acfs / acfs[0]).mean(axis=1)
    lags = np.arange(min_lag, n // MIN_PERIODS)
    if lags.size == 0:
        return None
    window = acf[lags]
    peaks = lags[1:-1][(window[1:-1] > window[:-2]) & (window[1:-1] >= window[2:])]
    good = [int(lag) for lag in peaks if acf[lag] >= min_corr]
    return good[0] if good else None


class IdlePredictor:
    """Forecasts one node's per-core utilisation (0..1) a few samples ahead."""

    def __init__(self, n_cores: int, *, history: int = 240, threshold: float = 0.5,
                 refit_every: int = 10) -> None:
        self.buf = np.zeros((history, n_cores))
        self.count = 0
        self.threshold = threshold
        self.refit_every = refit_every
        self.period: int | None = None
        self.hits = 0
        self.checked = 0
        self._next: np.ndarray | None = None

    def observe(self, util: Sequence[float]) -> None:
        """Add one sample; score the forecast that was made for it."""
        u = np.asarray(util, dtype=float)[: self.buf.shape[1]]
        if u.size != self.buf.shape[1]:
            return
        if self._next is not None:
            self.hits += int(np.sum((u < self.threshold) == (self._next < self.threshold)))
            self.checked += u.size
        self.buf[self.count % len(self.buf)] = u
        self.count += 1
        if self.count % self.refit_every == 0:
            self.period = detect_period(self.history())
        self._next = self.forecast(1)[0]

    def history(self) -> np.ndarray:
        """Samples in time order, oldest first: [samples, cores]."""
        n = min(self.count, len(self.buf))
        start = self.count % len(self.buf) if self.count > len(self.buf) else 0
        return np.roll(self.buf, -start, axis=0)[:n]

    def forecast(self, steps: int) -> np.ndarray:
        """Predicted utilisation for the next ``steps`` samples: [steps, cores]."""
        hist = self.history()
        if hist.size == 0:
            return np.zeros((steps, self.buf.shape[1]))
        if self.period is not None and len(hist) >= self.period:
            idx = len(hist) - self.period + (np.arange(steps) % self.period)
            return hist[idx]
        level = hist[-3:].mean(axis=0)
        return np.repeat(level[None, :], steps, axis=0)

    def expected(self, steps: int) -> np.ndarray:
        """Per core, the highest utilisation expected now or over the next ``steps``."""
        hist = self.history()
        now = hist[-1] if len(hist) else np.zeros(self.buf.shape[1])
        return np.maximum(now, self.forecast(steps).max(axis=0))

    @property
    def accuracy(self) -> float | None:
        """Share of per-core idle/busy forecasts that came true (None before any check)."""
        return self.hits / self.checked if self.checked else None
