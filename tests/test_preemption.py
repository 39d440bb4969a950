from __future__ import annotations

from pathlib import Path

from odop.energy.advisor import EnergyPolicy
from odop.protocol import MsgType
from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider
from odop.scheduler.holds import Holds
from odop.scheduler.lifecycle import Lifecycle
from odop.scheduler.placement import make_placement
from odop.scheduler.preemption import PhaseBook, Preemption
from odop.scheduler.selection import Pending, make_selection
from odop.scheduler.state import RunState
from odop.store.executions import RunStore
from odop.store.profiles import ProfileStore
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



class Parts:
    """The decider, the lifecycle and preemption over a real run store, no socket: the
    commands they would send are recorded."""

    def __init__(self, tmp: Path) -> None:
        self.store = RunStore(tmp / "odop.db")
        self.profiles = ProfileStore(tmp / "profiles.db")
        self.decider = Decider(make_selection("fifo"), make_placement("first_fit"))
        self.sent: list[tuple[str, MsgType, dict]] = []
        self.lifecycle = Lifecycle(
            self.store, self.profiles, self.decider,
            Holds(EnergyPolicy.from_config({}), self.decider), RunState(),
            lambda node, mtype, **f: self.sent.append((node, mtype, f)), run="r",
            footprint=lambda j, a, b: 0.0)
        self.preemption = Preemption(self.decider, self.lifecycle)
        for name in ("a", "b"):
            n = Node(name, name.encode(), [0, 1])
            n.update({"util": [0.0, 0.0]}, sim_alive=True)
            self.decider.add_node(n)

    def place(self, execution: str, task: str, spec: dict) -> None:
        self.decider.specs[task] = spec
        self.store.add(execution, task, {})
        self.decider.enqueue(Pending(execution, task, {}, 0.0))
        for p in self.decider.cycle(0.0):
            self.lifecycle.place(p)


def test_a_task_over_several_nodes_is_requeued_whatever_its_policy(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    parts.place("w", "wide", {"cpus_min": 1.0, "cpus_max": 1.0, "nodes": 2, "preempt": "pause"})
    assert parts.decider.spans["w"] == [("b", [0])]
    parts.preemption.take_back(parts.decider.nodes["b"], [0], "the rank on b needs its core")
    assert parts.lifecycle.requeueing == {"w"} and not parts.lifecycle.paused
    assert parts.sent == [("a", MsgType.KILL, {"execution": "w", "reason": "preempted: the "
                                                "rank on b needs its core"})]
    assert (parts.store.get("w") or {})["state"] == "placed"  # until its exit comes back
    parts.lifecycle.exited("w", {"t": 1.0})
    assert (parts.store.get("w") or {})["state"] == "queued" and "w" in parts.decider.pending


def test_a_paused_task_resumes_repinned_where_cores_free_up(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    parts.place("p", "one", {"cpus_min": 1.0, "cpus_max": 1.0})
    parts.preemption.take_back(parts.decider.nodes["a"], [0], "the rank on a stopped waiting")
    assert (parts.store.get("p") or {})["state"] == "paused" and "p" in parts.lifecycle.paused
    assert parts.sent[-1] == ("a", MsgType.PAUSE, {"execution": "p"})
    parts.preemption.resume_paused()
    assert (parts.store.get("p") or {})["state"] == "running"
    assert [m for _, m, _ in parts.sent[-2:]] == [MsgType.REPIN, MsgType.RESUME]


def test_a_cancelled_execution_lost_with_its_node_is_not_run_again(tmp_path: Path) -> None:
    """A user cancelled a running execution, then its node went silent: it ends
    cancelled, where a lost execution is otherwise queued again."""
    parts = Parts(tmp_path)
    parts.place("c", "one", {"cpus_min": 1.0, "cpus_max": 1.0})
    parts.store.transition("c", ExecState.RUNNING)
    assert parts.lifecycle.cancel("c", "cancelled by user")
    parts.lifecycle.lost("c", "lost: node a silent")
    row = parts.store.get("c") or {}
    assert row["state"] == "cancelled" and "c" not in parts.decider.pending
    assert row["reason"].startswith("cancelled by user")


def test_an_execution_capped_and_then_ended_leaves_the_capped_set(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    parts.place("p", "one", {"cpus_min": 1.0, "cpus_max": 1.0})
    parts.preemption.preempt("p", "over the cap", policy="pause", capped=True)
    assert parts.preemption.capped == {"p"}
    parts.lifecycle.exited("p", {"t": 1.0, "exit_code": 0, "reason": "ok", "cpu_s": 0.0,
                                 "max_rss_bytes": 0, "wall_s": 1.0})
    assert parts.preemption.capped == set()
