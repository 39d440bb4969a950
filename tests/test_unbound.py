"""Unbound, unmarked ranks: tasks get the cores the ranks' recent use leaves, and are
preempted only when the ranks' run delay shows them kept waiting."""

from __future__ import annotations

from pathlib import Path

import pytest

from odop.protocol import MsgType
from odop.scheduler.cluster import Node, unbound_cores
from tests.test_preemption import Parts


@pytest.mark.parametrize(("sim_cpu", "held"), [(0.0, 0), (0.3, 0), (0.5, 0), (0.6, 1),
                                               (1.0, 1), (1.4, 1), (1.9, 2)])
def test_unbound_ranks_hold_the_cores_their_use_fills(sim_cpu: float, held: int) -> None:
    assert unbound_cores(sim_cpu) == held


def test_a_waiting_rank_under_half_a_core_leaves_every_core() -> None:
    n = Node("a", b"a", [0, 1])
    for _ in range(2):  # a GPU-like rank: 30 % of one core, moving between both
        n.update({"util": [0.6, 0.3], "sim_n": 1, "sim_cpu": 0.3}, sim_alive=True)
    assert n.free(sim_running=True, threshold=0.5) == [0, 1]


def sample(node: Node, sim_cpu: float, sim_wait: float | None) -> None:
    node.update({"util": [1.0, 1.0], "sim_n": 2, "sim_cpu": sim_cpu, "sim_wait": sim_wait},
                sim_alive=True)


def test_ranks_that_do_not_wait_keep_their_tasks(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    parts.place("t", "one", {"cpus_min": 1.0, "cpus_max": 1.0})
    node = parts.decider.nodes[parts.decider.active["t"][1]]
    sample(node, 1.9, 0.001)  # both ranks computing, the task at SCHED_IDLE: no harm
    parts.preemption.shortfall(node, sim_running=True)
    assert (parts.store.get("t") or {})["state"] != "paused"
    sample(node, 1.9, 0.3)  # the ranks waited 15 % of the time each: hurt
    parts.preemption.shortfall(node, sim_running=True)
    assert (parts.store.get("t") or {})["state"] == "paused"
    assert parts.sent[-1][1] is MsgType.PAUSE


def test_without_a_run_delay_the_cpu_use_decides(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    parts.place("t", "one", {"cpus_min": 1.0, "cpus_max": 1.0})
    node = parts.decider.nodes[parts.decider.active["t"][1]]
    sample(node, 1.9, None)  # an agent that does not report it
    parts.preemption.shortfall(node, sim_running=True)
    assert (parts.store.get("t") or {})["state"] == "paused"
