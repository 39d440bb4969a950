"""DeferralPlanner: capacity, re-planning, headroom, deadlines, windows over the whole run."""

from __future__ import annotations

import math

import numpy as np
import pytest

from odop.energy.advisor import EnergyPolicy
from odop.energy.deferral import DeferralPlanner
from odop.energy.forecast import Forecast
from odop.energy.planner import plan_many
from odop.scheduler.core import Decider
from odop.scheduler.holds import Holds
from odop.scheduler.placement import make_placement
from odop.scheduler.selection import Pending, make_selection

H = 3600.0


def hourly(values: list[float]) -> Forecast:
    return Forecast(np.arange(len(values)) * H, H, np.array(values, float))


def planner(values: list[float], capacity: float = math.inf, **kw: float) -> DeferralPlanner:
    p = DeferralPlanner(grid_s=H / 4, **kw)
    p.set_forecast(hourly(values))
    p.set_capacity(capacity)
    return p


def add(p: DeferralPlanner, key: str, duration: float, end_by: float, now: float = 0.0,
        cores: float = 1.0) -> None:
    p.add(key, cores=cores, duration_s=duration, energy_j=duration * 100, earliest=now,
          end_by=end_by)


def concurrency(p: DeferralPlanner, t: float) -> float:
    return sum(j.cores for k, j in p.jobs.items() if p.starts[k] <= t < p.starts[k] + j.duration_s)


def test_without_a_limit_each_task_gets_its_exact_optimum() -> None:
    rng = np.random.default_rng(5)
    values = list(rng.uniform(50, 500, 24))
    p = planner(values, headroom=0.0)
    dur = rng.uniform(600, 4 * H, 30)
    ends = dur + rng.uniform(0, 12 * H, 30)
    for i in range(30):
        add(p, f"t{i}", dur[i], ends[i])
    p.plan(0.0)
    exact = plan_many(hourly(values), dur, dur * 100, 0.0, ends).start
    assert [p.starts[f"t{i}"] for i in range(30)] == pytest.approx(exact)


def test_the_capacity_is_never_exceeded() -> None:
    p = planner([9, 9, 1, 1, 9, 9, 9, 9], capacity=2, headroom=0.0)
    for i in range(5):
        add(p, f"t{i}", H, 8 * H)
    p.plan(0.0)
    assert sorted(p.starts.values()) == [0, 2 * H, 2 * H, 3 * H, 3 * H]
    assert all(p.fits.values())
    assert max(concurrency(p, t) for t in np.arange(0, 8 * H, 600)) == 2


def test_a_tighter_arrival_moves_a_plan_made_before_it() -> None:
    p = planner([9, 9, 1, 5, 5, 5, 5, 5], capacity=1, headroom=0.0, urgent_s=0.0)
    add(p, "loose", H, 8 * H)
    assert p.start_of("loose", 0.0) == 2 * H  # the dip
    add(p, "tight", H, 3 * H, now=600.0)  # the dip is the best it can have before 3 h
    assert p.start_of("tight", 600.0) == 2 * H
    assert p.start_of("loose", 600.0) == 3 * H  # moved: plans are movable until a start


def test_no_room_before_the_latest_start_means_due_at_once() -> None:
    p = planner([9, 1, 1, 9], capacity=1, headroom=0.0)
    p.start("sim-task", 0.0, 1.0, 4 * H)  # the only core is taken for the whole window
    add(p, "late", H, 2 * H)
    assert p.start_of("late", 0.0) == 0.0 and not p.fits["late"]
    assert p.due(0.0) == ["late"]


def test_loose_tasks_leave_headroom_and_keep_a_margin_before_their_latest_start() -> None:
    p = planner([1, 1, 9, 9, 9, 9, 9, 9], capacity=4, headroom=0.25, urgent_s=H)
    p.start("running", 0.0, 3.0, H)  # three cores taken for the first hour
    for i in range(3):
        add(p, f"loose{i}", H, 8 * H)
    p.plan(0.0)
    assert sorted(p.starts.values()) == [H, H, H]  # the fourth core of the dip is kept
    add(p, "urgent", H, 1.5 * H)  # half an hour of slack: it takes the kept core now
    assert p.start_of("urgent", 0.0) == 0.0 and p.fits["urgent"]
    q = planner([9, 9, 9, 1], capacity=4, urgent_s=H)
    add(q, "x", H, 4 * H)  # the dip is its last hour: too close to its deadline to plan in
    assert q.start_of("x", 0.0) == 0.0  # not 3 h, its latest start


def test_a_window_is_the_signal_averaged_over_the_whole_run() -> None:
    # a 2-hour task: the single cleanest hour (1) sits between two very dirty ones
    p = planner([300, 900, 1, 900, 200, 200], headroom=0.0)
    add(p, "long", 2 * H, 6 * H)
    assert p.start_of("long", 0.0) == 4 * H  # mean 200 beats mean 450 around the dip


def test_a_start_as_planned_keeps_the_plan_an_early_end_re_plans() -> None:
    p = planner([9, 1, 9, 9], capacity=1, headroom=0.0, urgent_s=0.0)
    add(p, "a", H, 4 * H)
    add(p, "b", H, 4 * H)
    p.plan(0.0)
    made = p.replans
    first = min(p.starts, key=p.starts.__getitem__)
    assert p.starts[first] == 0.0
    p.start(first, 0.0, 1.0, H)
    p.plan(60.0)
    assert p.replans == made  # it started where the plan had it: nothing to move
    p.finish(first, 600.0)  # ended 50 minutes early: its core is free again
    p.plan(600.0)
    assert p.replans == made + 1


def test_bad_headroom_is_refused() -> None:
    with pytest.raises(ValueError, match="headroom"):
        DeferralPlanner(headroom=1.0)


def test_the_scheduler_holds_follow_one_plan_for_all_deferrable_executions(tmp_path) -> None:
    """Two deferrable executions and a one-core allocation: the policy plans them into the
    capacity the scheduler reports, so only one is given the dip."""
    grid = tmp_path / "grid.csv"
    grid.write_text("t,carbon\n" + "".join(
        f"{i * H:.0f},{v}\n" for i, v in enumerate([400, 400, 100, 390, 400, 400, 400, 400])))
    policy = EnergyPolicy.from_config({"provider": "replay", "file": str(grid)}, now=0.0)
    policy.planner.headroom = 0.0
    decider = Decider(make_selection("fifo"), make_placement("first_fit"))
    decider.specs = {"r": {"time_s": H, "cpus_min": 1.0, "energy": {"deferrable": True}}}
    holds = Holds(policy, decider)
    policy.concurrency(1, now=0.0)  # the scheduler's first cycle: one core odop could hold
    for name in ("a", "b"):
        decider.enqueue(Pending(name, "r", {}, 0.0, deadline=8 * H, expected_s=H))
    holds.apply(60.0, has_free_cores=True)
    until = sorted(u for _, u in holds.held.values())
    assert until == [2 * H, 3 * H]  # the dip for one, the next cleanest hour for the other
    assert policy.status(60.0)["plans"] == 2
