"""benchmarks/compare.py: the harvest arithmetic, and a tiny real run of every kind of way."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from compare import (  # noqa: E402
    CPU_BOUND_STEPS,
    PHASED_STEPS,
    pair_with_alone,
    round_order,
    scenarios,
    summarise,
    targets,
)
from compare_runs import harvested  # noqa: E402


def test_harvested_counts_only_the_overlap() -> None:
    tasks = [(0.0, 2.0, 1.0),   # all inside [0, 4]
             (3.0, 5.0, 2.0),   # half inside
             (5.0, 6.0, 9.0),   # after the window
             (1.0, 1.0, 3.0)]   # zero wall: ignored
    assert harvested(tasks, 0.0, 4.0) == pytest.approx(2.0)


def test_cpu_bound_scenarios_run_longer_with_five_snapshots_each() -> None:
    by_name = {sc.name: sc for sc in scenarios(cores=2, steps=1000)}
    assert by_name["gpu_like"].steps == 1000
    assert by_name["phased"].steps == 1000 * PHASED_STEPS
    assert by_name["all_busy"].steps == by_name["cpu_spare"].steps == 1000 * CPU_BOUND_STEPS
    assert all(sc.steps // sc.every == 5 for sc in by_name.values())
    assert [sc.ranks for sc in by_name.values()] == [1, 1, 2, 2, 1, 2, 2]
    wrapped = [name for name, sc in by_name.items() if sc.wrapped]
    assert wrapped == ["wrapped_gpu_like", "wrapped_phased", "wrapped_all_busy"]
    assert "-bind-to" not in by_name["wrapped_phased"].sim_argv("none", Path("o"))
    assert "-bind-to" in by_name["phased"].sim_argv("none", Path("o"))


def test_every_way_runs_between_two_nones_and_the_ways_rotate() -> None:
    ways = ["none", "a", "b", "c"]
    assert round_order(ways, 0) == ["none", "a", "none", "b", "none", "c", "none"]
    assert round_order(ways, 1) == ["none", "b", "none", "c", "none", "a", "none"]
    assert round_order(["a", "b"], 1) == ["b", "a"]


def test_each_run_is_paired_with_the_nearest_none_before_and_after() -> None:
    block = [("none", {"sim_wall_s": 10.0}), ("a", {"sim_wall_s": 11.0}),
             ("b", {"error": "boom"}), ("none", {"sim_wall_s": 12.0}),
             ("c", {"sim_wall_s": 13.0}), ("none", {"error": "boom"})]
    pair_with_alone(block)
    assert [r.get("alone_s") for _, r in block] == [[10.0], [10.0, 12.0], None, [12.0], [12.0],
                                                    None]


def test_summary_and_targets_from_runs() -> None:
    runs = {"none": [{"makespan_s": 10.0, "sim_wall_s": 10.0, "harvested_core_s": 0.0,
                      "verified": None, "alone_s": [10.0]}],
            "after": [{"makespan_s": 14.0, "sim_wall_s": 10.0, "harvested_core_s": 0.0,
                       "verified": True, "alone_s": [10.0]}],
            "nice": [{"makespan_s": 11.0, "sim_wall_s": 10.5, "harvested_core_s": 3.0,
                      "verified": True, "alone_s": [10.0]}],
            # the host ran 10 % slower around these runs: the runs beside them say so, but
            # for one neighbour of the second, which ran in the host's next state
            "odop_fifo": [{"makespan_s": 12.2, "sim_wall_s": 11.1, "harvested_core_s": 3.0,
                           "verified": True, "alone_s": [11.0, 11.0]}, {"error": "boom"},
                          {"makespan_s": 12.2, "sim_wall_s": 11.1, "harvested_core_s": 3.0,
                           "verified": True, "alone_s": [11.0, 9.0]}]}
    s = summarise(runs)
    assert s["nice"]["sim_slowdown_pct"] == pytest.approx(5.0)
    assert s["odop_fifo"]["sim_slowdown_pct"] == pytest.approx(0.91, abs=0.01)
    # the none loop (10 s) plus odop's excess over the runs beside it (1.2 s in 3 of 4)
    assert s["odop_fifo"]["makespan_paired_s"] == pytest.approx(11.2)
    assert s["odop_fifo"]["runs"] == 2 and s["odop_fifo"]["failed"] == ["boom"]
    t = targets("gpu_like", s)["odop_fifo"]
    assert t == {"below_sequential": True, "within_3pct_of_best_background": True,
                 "not_behind_best_background": False, "slowdown_within_2pct": True,
                 "tail_within_last_task": None, "cpu_per_snapshot_below_background": None}
    assert targets("all_busy", s)["odop_fifo"]["below_sequential"] is None
    s["odop_fifo"]["makespan_paired_s"] = 11.4  # 3.6 % above nice's 11.0
    assert targets("gpu_like", s)["odop_fifo"]["within_3pct_of_best_background"] is False


@pytest.mark.slow
@pytest.mark.timeout(300)  # ~15 s on a quiet machine; odop's drain starves under load
@pytest.mark.skipif(mpiexec() is None, reason="needs mpiexec")
def test_tiny_run_of_every_kind_of_way() -> None:
    ways = "none,after,nice,nice_autogroup,odop_fifo"
    p = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "compare.py"), "--json",
                          "--only", "gpu_like", "--ways", ways, "--steps", "10", "--rounds", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=child_env(), start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=280)
    finally:  # a timeout leaves no mpiexec, odop daemon or task behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode in (0, 1), stderr[-2000:]  # 1: a target missed, not a failure
    out = json.loads(stdout)
    assert {"date", "machine", "scenarios"} <= set(out)
    assert out["machine"]["cores"] >= 1
    got = out["scenarios"]["gpu_like"]
    assert set(got) == set(ways.split(","))
    for way, s in got.items():
        runs = round_order(ways.split(","), 0).count(way)  # none: before and after each way
        assert s["runs"] == runs, (way, s.get("failed"))
        assert s["verified"] is (None if way == "none" else True), way
        assert s["makespan_s"] > 0 and s["harvested_core_s"] >= 0
        tails = [m - t for m, t in zip(s["makespan_runs_s"], s["sim_runs_s"], strict=True)]
        assert s["tail_s"] == pytest.approx(statistics.median(tails), abs=0.01)
        assert s["makespan_paired_s"] > 0


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(mpiexec() is None, reason="needs mpiexec")
def test_tiny_wrapped_run_against_the_watcher() -> None:
    ways = "none,nice,odop_fifo"
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "compare.py"), "--json",
                          "--only", "wrapped_gpu_like", "--ways", ways, "--steps", "10",
                          "--rounds", "1"], capture_output=True, text=True, env=child_env(),
                         timeout=280, check=False)
    assert out.returncode in (0, 1), out.stderr[-2000:]
    got = json.loads(out.stdout)["scenarios"]["wrapped_gpu_like"]
    odop, nice = got["odop_fifo"], got["nice"]
    assert odop["runs"] == nice["runs"] == 1, (odop.get("failed"), nice.get("failed"))
    assert odop["verified"] is True and nice["verified"] is True  # every snapshot's outputs
    assert odop["cpu_s_per_snapshot"] > 0 and nice["cpu_s_per_snapshot"] > 0
    assert odop["last_task_s"] > 0 and odop["drain_s"] >= 0
