"""The agent's view of its node, as the scheduler decides on it."""

from __future__ import annotations

from odop.engine.agent import node_view


def test_ranks_bound_one_per_core_hold_every_core() -> None:
    def rank(cores: list[int]) -> dict:
        return {"role": "sim", "affinity": cores, "cpu": 0.0}

    def view(*ranks: list[int]) -> list[int]:
        sample = {"processes": {"watched": [rank(c) for c in ranks]}}
        return node_view(sample, [0, 1])["sim_bound"]

    assert view([0], [1]) == [0, 1]     # bound one per core: all held, even when idle
    assert view([0]) == [0]             # one bound rank, a spare core
    assert view([0, 1], [0, 1]) == []   # unbound ranks: judged by what they use
