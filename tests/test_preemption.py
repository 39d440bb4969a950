from __future__ import annotations

from pathlib import Path

from odop.config import Config
from odop.paths import RunPaths
from odop.scheduler.cluster import Node
from odop.scheduler.preemption import PhaseBook
from odop.scheduler.selection import Pending
from odop.scheduler.service import SchedulerService
from odop.store.states import ALLOWED, ExecState


def test_a_phase_lends_its_rank_cores_and_takes_them_back() -> None:
    book = PhaseBook(["io"], min_lend_s=1.0)
    book.mark("n", 0, "io", True, [3], now=0.0)   # first seen: learned, not lent
    assert book.lent("n") == frozenset()
    assert book.mark("n", 0, "io", False, [3], now=5.0) == frozenset()
    assert book.mark("n", 0, "io", True, [3], now=6.0) == frozenset()
    assert book.lent("n") == {3} and book.lent("m") == frozenset()
    assert book.mark("n", 0, "io", False, [3], now=11.0) == {3}
    assert book.lent("n") == frozenset()


def test_short_phases_never_lend() -> None:
    book = PhaseBook(["io"], min_lend_s=1.0)
    for i in range(3):
        book.mark("n", 0, "io", True, [0], now=float(i))
        assert book.lent("n") == frozenset()
        assert book.mark("n", 0, "io", False, [0], now=i + 0.02) == frozenset()


def test_phases_not_named_idle_lend_nothing() -> None:
    book = PhaseBook(["io"])
    book.mark("n", 1, "compute", True, [1], now=0.0)
    assert book.lent("n") == frozenset()


def test_a_just_placed_execution_may_be_paused() -> None:
    assert ExecState.PAUSED in ALLOWED[ExecState.PLACED]



def test_a_task_over_several_nodes_is_requeued_whatever_its_policy(tmp_path: Path,
                                                                    odop_home: Path) -> None:
    svc = SchedulerService(RunPaths(tmp_path / "run").create(), Config())
    try:
        d = svc.decider
        d.specs["wide"] = {"cpus_min": 1.0, "cpus_max": 1.0, "nodes": 2, "preempt": "pause"}
        for name in ("a", "b"):
            n = Node(name, name.encode(), [0, 1])
            n.update({"util": [0.0, 0.0]}, sim_alive=True)
            d.add_node(n)
        svc.store.add("w", "wide", {})
        d.enqueue(Pending("w", "wide", {}, 0.0))
        placed = d.cycle(0.0)
        svc._act(placed)  # recorded placed, start sent to node a's (absent) agent
        assert placed[0].spans == [("b", [0])]
        svc.preemption.take_back(d.nodes["b"], [0], "the rank on b needs its core")
        assert svc.preemption.requeueing == {"w"} and not svc.preemption.paused
        assert (svc.store.get("w") or {})["state"] == "placed"  # until its exit comes back
    finally:
        svc.sock.close(0)
        svc.store.close()
        svc.profiles.close()
