"""Deferral planner: exactness against brute force, bounds, partial slots, baseline."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from odop.energy.forecast import Forecast
from odop.energy.planner import (
    bucket_heuristic,
    plan_many,
    plan_start,
    window_costs,
)


def brute(fc: Forecast, d: float, e: float, now: float, end_by: float) -> float:
    """Min cost over a 1-second grid, integrating slot by slot in plain Python."""
    def cost(s: float) -> float:
        total, t = 0.0, s
        while t < s + d - 1e-9:
            i = min(max(int((t - fc.start[0]) // fc.resolution_s), 0), fc.start.size - 1)
            edge = fc.start[0] + (i + 1) * fc.resolution_s if i < fc.start.size - 1 else math.inf
            step = min(edge, s + d) - t
            total += fc.carbon[i] * step
            t += step
        return e / d * total / 3.6e6
    latest = end_by - d
    return min(cost(float(s)) for s in np.arange(now, latest + 1e-9, 1.0)) if latest >= now \
        else cost(now)


def test_matches_brute_force_on_small_cases():
    rng = np.random.default_rng(3)
    for _ in range(15):
        fc = Forecast(np.arange(8) * 60.0, 60.0, rng.uniform(10, 500, 8))
        d, now = float(rng.integers(5, 200)), float(rng.integers(0, 60))
        end_by = now + d + float(rng.integers(0, 300))
        dec = plan_start(fc, d, 1000.0, now, end_by)
        assert dec.cost <= brute(fc, d, 1000.0, now, end_by) + 1e-9
        assert now <= dec.start <= end_by - d + 1e-9


def test_partial_slots_weighted_exactly():
    fc = Forecast(np.array([0.0, 100.0]), 100.0, np.array([100.0, 300.0]))
    cost = window_costs(fc, np.array([50.0]), np.array([100.0]), np.array([3.6e6]))
    assert cost[0] == 200.0  # half at 100, half at 300 -> mean 200 g/kWh x 1 kWh


def test_deadline_and_allocation_end_bound_the_start():
    fc = Forecast(np.arange(10) * 3600.0, 3600.0, np.array([9, 9, 9, 9, 9, 9, 9, 9, 1, 1.0]))
    assert plan_start(fc, 3600, 1, 0, deadline=10 * 3600).start == 8 * 3600
    assert plan_start(fc, 3600, 1, 0, deadline=10 * 3600, alloc_end=5 * 3600).start == 0
    late = plan_start(fc, 3600, 1, 0, deadline=1800)
    assert late.start == 0 and not late.fits  # nothing fits: start now


def test_dip_inside_long_window_found_where_buckets_miss():
    vals = np.full(48, 300.0)
    vals[13] = 10.0  # one clean half hour at 6:30, off the 2-hour bucket grid
    fc = Forecast(np.arange(48) * 1800.0, 1800.0, vals)
    dec = plan_start(fc, 1800, 1, 0, deadline=86400)
    assert dec.start == 13 * 1800
    b = bucket_heuristic(fc, 1800, 0, 86400)
    assert window_costs(fc, np.array([b]), np.array([1800.0]), np.array([1.0]))[0] > dec.cost


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(1, 1000), min_size=2, max_size=30), st.integers(1, 3600 * 6),
       st.integers(0, 3600), st.integers(0, 3600 * 12), st.sampled_from([900.0, 1800.0, 3600.0]))
def test_never_worse_than_bucket_heuristic(vals, d, now, slack, res):
    fc = Forecast(np.arange(len(vals)) * res, res, np.array(vals))
    deadline = now + d + slack
    dec = plan_start(fc, d, 1000.0, now, deadline)
    b = bucket_heuristic(fc, d, now, deadline)
    bcost = window_costs(fc, np.array([b]), np.array([float(d)]), np.array([1000.0]))[0]
    assert dec.cost <= bcost * (1 + 1e-9) + 1e-12
    assert b >= now and (b + d <= deadline + 1e-6 or b == now)


def test_plan_many_equals_plan_start():
    rng = np.random.default_rng(1)
    fc = Forecast(np.arange(50) * 1800.0, 1800.0, rng.uniform(50, 400, 50))
    d = rng.uniform(600, 20000, 40)
    dl = rng.uniform(0, 80000, 40) + d
    batch = plan_many(fc, d, d * 100, 0.0, dl)
    for j in range(40):
        assert batch.start[j] == plan_start(fc, d[j], d[j] * 100, 0.0, dl[j]).start
