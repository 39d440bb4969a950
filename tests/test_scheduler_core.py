from __future__ import annotations

import pytest

from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider, cores_wanted
from odop.scheduler.placement import PLACEMENTS
from odop.scheduler.plugins import make_placement, make_selection
from odop.scheduler.selection import SELECTIONS, Pending

SPEC = {"cpus_min": 1.0, "cpus_max": 1.0, "max_runs": None}


def decider(selection: str = "fifo", placement: str = "first_fit") -> Decider:
    d = Decider(make_selection(selection), make_placement(placement))
    d.specs["t"] = dict(SPEC)
    return d


def node(name: str, cores: int, util: list[float] | None = None,
         bound: list[int] | None = None, sim_cpu: float = 0.0) -> Node:
    n = Node(name, name.encode(), list(range(cores)))
    n.update({"util": util or [0.0] * cores, "sim_bound": bound or [], "sim_n": 2,
              "sim_cpu": sim_cpu}, sim_alive=True)
    return n


def pend(i: int, **kw: object) -> Pending:
    return Pending(f"e{i}", "t", {}, float(i), **kw)  # type: ignore[arg-type]


def test_bound_simulation_cores_are_never_granted() -> None:
    d = decider()
    d.add_node(node("a", 4, bound=[0, 1]))
    for i in range(5):
        d.enqueue(pend(i))
    placed = d.cycle(100.0)
    assert sorted(c for p in placed for c in p.cores) == [2, 3]
    assert len(d.pending) == 3


def test_unbound_simulation_busy_cores_are_not_idle() -> None:
    d = decider()
    d.add_node(node("a", 4, util=[0.9, 0.1, 0.95, 0.0], sim_cpu=1.85))
    for i in range(4):
        d.enqueue(pend(i))
    assert sorted(c for p in d.cycle(0.0) for c in p.cores) == [1, 3]


def test_busy_cores_count_for_the_simulation_only_as_far_as_its_cpu_use() -> None:
    d = decider()
    d.add_node(node("a", 4, util=[0.9, 0.9, 0.95, 0.0], sim_cpu=1.0))  # others load 2 cores
    for i in range(4):
        d.enqueue(pend(i))
    assert sorted(c for p in d.cycle(0.0) for c in p.cores) == [0, 1, 3]


def test_a_node_without_simulation_offers_every_core() -> None:
    d = decider()
    n = Node("a", b"a", [0, 1])
    n.update({"util": [1.0, 1.0]}, sim_alive=True)
    d.add_node(n)
    d.enqueue(pend(0))
    d.enqueue(pend(1))
    assert len(d.cycle(0.0)) == 2


def test_a_grant_holds_until_released_however_idle_the_task_is() -> None:
    d = decider()
    d.add_node(node("a", 1))
    d.enqueue(pend(0))
    d.enqueue(pend(1))
    assert [p.pending.execution for p in d.cycle(0.0)] == ["e0"]
    d.nodes["a"].update({"util": [0.0]}, sim_alive=True)  # an IO-bound task: core looks idle
    assert d.cycle(1.0) == []
    d.release("e0")
    assert [p.pending.execution for p in d.cycle(2.0)] == ["e1"]


def test_no_core_offered_before_first_sample() -> None:
    d = decider()
    d.add_node(Node("a", b"a", [0, 1]))
    d.enqueue(pend(0))
    assert d.cycle(0.0) == []


def test_after_simulation_end_every_core_drains_the_queue() -> None:
    d = decider()
    d.add_node(node("a", 2, bound=[0, 1]))
    d.enqueue(pend(0))
    assert d.cycle(0.0) == []
    d.sim_running = False
    assert len(d.cycle(0.0)) == 1


def test_max_runs_and_not_before() -> None:
    d = decider()
    d.specs["t"]["max_runs"] = 1
    d.add_node(node("a", 4))
    d.enqueue(pend(0))
    d.enqueue(pend(1))
    d.enqueue(pend(2, not_before=50.0))
    assert len(d.cycle(0.0)) == 1


def test_restart_regrants_recorded_cores() -> None:
    d = decider()
    d.activate("e9", "t", "a", [1])
    d.add_node(node("a", 2))
    d.enqueue(pend(0))
    assert d.cycle(0.0)[0].cores == [0]


@pytest.mark.parametrize("spec, want", [
    ({"cpus_min": 0.5, "cpus_max": 0.5}, (1, 1)),
    ({"cpus_min": 2.0, "cpus_max": 4.0}, (2, 4)),
    ({"cpus_min": 1.5, "cpus_max": 1.5}, (2, 2)),
])
def test_cores_wanted(spec: dict[str, float], want: tuple[int, int]) -> None:
    assert cores_wanted(spec) == want


def test_selections_order() -> None:
    ps = [pend(0, priority=1, expected_s=5.0, deadline=30.0),
          pend(1, priority=5, expected_s=None, deadline=10.0),
          pend(2, priority=3, expected_s=1.0, deadline=None)]
    order = {name: [p.execution for p in cls().order(ps, 0.0)] for name, cls in SELECTIONS.items()}
    assert order == {"fifo": ["e0", "e1", "e2"], "priority": ["e1", "e2", "e0"],
                     "shortest": ["e2", "e0", "e1"], "deadline": ["e1", "e0", "e2"]}


def test_placements() -> None:
    free = {"a": [0, 1, 2], "b": [5], "c": [7, 8]}
    got = {name: cls().place(free, 1, 1) for name, cls in PLACEMENTS.items()}
    assert got == {"first_fit": ("a", [0]), "best_fit": ("b", [5]), "worst_fit": ("a", [0]),
                   "round_robin": ("a", [0])}
    rr = make_placement("round_robin")
    assert [rr.place(free, 1, 1)[0] for _ in range(4)] == ["a", "b", "c", "a"]  # type: ignore[index]
    assert make_placement("first_fit").place(free, 4, 4) is None
