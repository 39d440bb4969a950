"""The agent's view of its node, as the scheduler decides on it."""

from __future__ import annotations

import os

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


def test_gpus_held_by_anything_but_odop_tasks_are_foreign() -> None:
    devices = [{"index": 0, "util": 0.1, "mem_used": 5, "mem_total": 9,
                "procs": [{"pid": os.getpid(), "mem": 5}]},      # this process: a rank
               {"index": 1, "util": 0.0, "mem_used": 0, "mem_total": 9, "procs": []},
               {"index": 2, "util": 0.7, "mem_used": 3, "mem_total": 9,
                "procs": [{"pid": os.getpid(), "mem": 3}]}]     # ... or one of our tasks
    view = node_view({"gpus": devices}, [0])
    assert [g["foreign"] for g in view["gpus"]] == [True, False, True]
    mine = node_view({"gpus": devices[2:]}, [0], task_groups={os.getpgid(0)})
    assert mine["gpus"] == [{"index": 2, "util": 0.7, "mem_used": 3, "mem_total": 9,
                             "foreign": False}]
    assert node_view({}, [0])["gpus"] == []  # no GPU sampler, or no GPU
