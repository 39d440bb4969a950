"""The agent's view of its node, as the scheduler decides on it."""

from __future__ import annotations

import pytest

from odop.engine.agent import bound_use, has_spare_core, node_view


def test_ranks_bound_one_per_core_hold_every_core() -> None:
    def rank(cores: list[int]) -> dict:
        return {"role": "sim", "affinity": cores, "cpu": 0.0}

    def view(*ranks: list[int]) -> list[int]:
        sample = {"processes": {"watched": [rank(c) for c in ranks]}}
        return node_view(sample, [0, 1])["sim_bound"]

    assert view([0], [1]) == [0, 1]     # bound one per core: all held, even when idle
    assert view([0]) == [0]             # one bound rank, a spare core
    assert view([0, 1], [0, 1]) == []   # unbound ranks: judged by what they use


def test_bound_use_splits_a_rank_over_its_cores() -> None:
    sim = [{"affinity": [0], "cpu": 0.2}, {"affinity": [0], "cpu": 0.1},
           {"affinity": [2, 3], "cpu": 1.0}, {"affinity": [0, 1, 2, 3], "cpu": 4.0}]
    assert bound_use(sim, 4) == pytest.approx({0: 0.3, 2: 0.5, 3: 0.5})
    view = node_view({"processes": {"watched": [dict(p, role="sim") for p in sim]}},
                     [0, 1, 2, 3])
    assert view["sim_bound"] == [0, 2, 3] and view["sim_use"] == [0.3, 0.5, 0.5]


def test_a_spare_core_is_one_no_rank_holds() -> None:
    def view(bound: list[int], sim_cpu: float) -> dict:
        return {"cores": [0, 1], "sim_bound": bound, "sim_cpu": sim_cpu}

    assert has_spare_core(view([0], 1.0)) and not has_spare_core(view([0, 1], 0.1))
    assert has_spare_core(view([], 1.2)) and not has_spare_core(view([], 1.8))
