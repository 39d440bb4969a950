"""benchmarks/chaos.py, small: three SIGKILL rounds (scheduler and agent) under the keepers;
nothing lost, nothing run twice without a recorded retry, the simulation's result unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_benchmark

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_three_kill_rounds_lose_nothing(tmp_path: Path) -> None:
    chaos = load_benchmark("chaos")
    setup = chaos.Setup(tmp_path, rounds=3, steps=10, per_step=2, pace_s=0.4, gap_s=(0.5, 1.5),
                        seed=7, drain_s=90.0)
    result = chaos.run_chaos(setup, timeout_s=180.0)
    assert result["rounds"] == 3, result
    assert sum(result["kills"].values()) == 3
    assert result["sim_exit"] == 0, result["stderr_tail"]
    assert result["lost"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["invented"] == 0 and result["done_twice"] == 0
    assert result["checksum_ok"], result
    assert result["executions"] >= 20


def test_wrapped_rounds_killed_at_the_end_lose_nothing(tmp_path: Path) -> None:
    chaos = load_benchmark("chaos")
    result = chaos.run_wrapped(tmp_path, rounds=2, seed=3)
    rounds = result["wrapped_rounds"]
    assert [r["role"] for r in rounds] == ["scheduler", "agent"]
    assert result["wrapped_not_killed"] == 0, rounds
    assert result["wrapped_missed"] == 0 and result["wrapped_unaccounted"] == 0, rounds
    assert result["wrapped_failed_exits"] == 0, rounds
