from __future__ import annotations

import numpy as np

from odop.scheduler.predict import IdlePredictor, detect_period


def square_wave(n: int, period: int, busy: int) -> np.ndarray:
    return np.array([1.0 if (i % period) < busy else 0.0 for i in range(n)])


def test_detects_the_period_of_phases() -> None:
    assert detect_period(square_wave(120, 10, 6)) == 10
    assert detect_period(square_wave(120, 7, 3)) == 7


def test_no_period_in_noise_or_constant() -> None:
    rng = np.random.default_rng(1)
    assert detect_period(rng.random(120)) is None
    assert detect_period(np.ones(120)) is None


def test_periodic_forecast_beats_holding_the_level() -> None:
    wave = square_wave(200, 8, 4)
    util = np.stack([wave, 1 - wave], axis=1)  # core 0 and core 1 alternate
    p = IdlePredictor(2, refit_every=5)
    for row in util:
        p.observe(row)
    assert p.period == 8
    assert p.accuracy is not None and p.accuracy > 0.9
    flat = IdlePredictor(2, refit_every=10**9)  # never fits a period
    for row in util:
        flat.observe(row)
    assert p.accuracy > flat.accuracy  # type: ignore[operator]


def test_expected_is_pessimistic_over_the_window() -> None:
    p = IdlePredictor(1, refit_every=5)
    for v in square_wave(80, 8, 4):
        p.observe([v])
    assert p.expected(8)[0] == 1.0  # a busy phase is coming within the window
