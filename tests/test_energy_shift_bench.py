"""benchmarks/energy_shift.py on one capped and one uncapped trace: the scheduler's own
planner (the one it names in its JSON) keeps every deadline the optimum keeps, misses no
more than starting at once, stays near the optimum and never loses to 2-hour buckets."""

from __future__ import annotations

import pytest

from tests.conftest import load_benchmark

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.mark.parametrize("cap, ratio", [(True, 1.03), (False, 1.001)])
def test_one_trace_holds_the_issue_targets(cap: bool, ratio: float) -> None:
    bench = load_benchmark("energy_shift")
    r = bench.run_case("solar", False, cap, 7)
    misses = r["deadline_misses"]
    assert misses["odop"] <= misses["immediate"], r
    assert misses["optimum"] or not misses["odop"], r
    assert r["ratio_to_optimum"] <= ratio and r["ratio_to_bucket_heuristic"] <= 1.0, r


def test_the_benchmark_replays_the_planner_the_scheduler_uses() -> None:
    import inspect

    from odop.energy.advisor import EnergyPolicy
    from odop.energy.deferral import DeferralPlanner

    bench = load_benchmark("energy_shift")
    default = inspect.signature(bench.replay_planner).parameters["planner_cls"].default
    assert default is DeferralPlanner
    assert isinstance(EnergyPolicy.from_config({}).planner, DeferralPlanner)
