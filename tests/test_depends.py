"""depends_on: an execution waits for those of the tasks it depends on with the same
arguments submitted before it, and is skipped when one failed for good (index, decider,
and a real SchedulerService restarted on its database)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from odop.config import Config
from odop.paths import RunPaths
from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider
from odop.scheduler.depends import Dependencies, ObservedStore, canonical
from odop.scheduler.placement import make_placement
from odop.scheduler.selection import Pending, make_selection
from odop.scheduler.service import SchedulerService
from odop.store.states import ExecState

SPEC = {"cpus_min": 1.0, "cpus_max": 1.0}


def pend(execution: str, task: str, **args: object) -> Pending:
    return Pending(execution, task, dict(args), 0.0)


def index(*submitted: tuple[str, str, dict]) -> Dependencies:
    deps = Dependencies()
    for execution, task, args in submitted:
        deps.added(execution, task, args)
    return deps


def test_waits_only_for_the_same_arguments_submitted_before() -> None:
    deps = index(("a1", "a", {"path": "x"}), ("a2", "a", {"path": "y"}),
                 ("b1", "b", {"path": "x"}), ("b3", "b", {"path": "z"}),
                 ("a3", "a", {"path": "z"}))
    assert deps.waits(pend("b1", "b", path="x"), ["a"])       # a1: same snapshot, not over
    assert not deps.waits(pend("b3", "b", path="z"), ["a"])   # a3 came after it
    deps.changed("a1", ExecState.RUNNING)
    assert deps.waits(pend("b1", "b", path="x"), ["a"])
    deps.changed("a1", ExecState.DONE)
    assert not deps.waits(pend("b1", "b", path="x"), ["a"])
    assert not deps.doomed


def test_no_execution_of_the_dependency_means_it_runs() -> None:
    deps = index(("b1", "b", {"path": "x"}))
    assert not deps.waits(pend("b1", "b", path="x"), ["a"])


def test_argument_order_does_not_matter() -> None:
    assert canonical({"a": 1, "b": [1, 2]}) == canonical({"b": [1, 2], "a": 1})
    deps = index(("a1", "a", {"p": 1, "q": 2}), ("b1", "b", {"q": 2, "p": 1}))
    assert deps.waits(pend("b1", "b"), ["a"])


def test_a_failure_for_good_dooms_it_with_the_reason() -> None:
    for state in (ExecState.FAILED, ExecState.CANCELLED, ExecState.SKIPPED):
        deps = index(("a1", "a", {"path": "x"}), ("b1", "b", {"path": "x"}))
        deps.changed("a1", state)
        assert deps.waits(pend("b1", "b"), ["a"])
        ended = "failed" if state is ExecState.FAILED else f"was {state.value}"
        assert deps.take_doomed() == {
            "b1": f"depends on a: its execution a1 with the same arguments {ended}"}
        assert deps.take_doomed() == {}


def test_a_failure_with_a_retry_left_still_waits() -> None:
    deps = index(("a1", "a", {"path": "x"}), ("b1", "b", {"path": "x"}))
    deps.changed("a1", ExecState.FAILED)
    deps.changed("a1", ExecState.QUEUED)  # the retry: the same execution, queued again
    assert deps.waits(pend("b1", "b"), ["a"]) and not deps.doomed
    deps.changed("a1", ExecState.DONE)
    assert not deps.waits(pend("b1", "b"), ["a"])


def test_every_dependency_counts() -> None:
    deps = index(("a1", "a", {}), ("c1", "c", {}), ("b1", "b", {}))
    deps.changed("a1", ExecState.DONE)
    assert deps.waits(pend("b1", "b"), ["a", "c"])
    deps.changed("c1", ExecState.DONE)
    assert not deps.waits(pend("b1", "b"), ["a", "c"])


def test_load_keeps_submission_order_and_states() -> None:
    rows = [{"id": "a1", "task": "a", "args": {"p": 1}, "state": "failed"},
            {"id": "a2", "task": "a", "args": {"p": 2}, "state": "running"},
            {"id": "b1", "task": "b", "args": {"p": 1}, "state": "queued"},
            {"id": "b2", "task": "b", "args": {"p": 2}, "state": "queued"}]
    deps = Dependencies()
    deps.load(rows)
    assert deps.waits(pend("b1", "b"), ["a"]) and deps.take_doomed().keys() == {"b1"}
    assert deps.waits(pend("b2", "b"), ["a"]) and not deps.doomed


def test_the_cycle_places_a_dependent_only_once_its_dependency_is_done() -> None:
    d = Decider(make_selection("fifo"), make_placement("first_fit"))
    d.specs.update(a=dict(SPEC), b={**SPEC, "depends_on": ["a"]})
    n = Node("n", b"n", [0, 1, 2, 3])
    n.update({"util": [0.0] * 4}, sim_alive=True)
    d.add_node(n)
    d.enqueue(pend("a1", "a", path="x"))
    d.enqueue(pend("b1", "b", path="x"))
    d.enqueue(pend("b2", "b", path="y"))
    assert sorted(p.pending.execution for p in d.cycle(0.0)) == ["a1", "b2"]
    assert d.cycle(0.0) == [] and set(d.pending) == {"b1"}
    d.release("a1")
    d.depends.changed("a1", ExecState.DONE)
    assert [p.pending.execution for p in d.cycle(0.0)] == ["b1"]


def test_the_store_tells_every_state_change(tmp_path: Path) -> None:
    seen: list[tuple[str, ExecState]] = []
    store = ObservedStore(tmp_path / "odop.db", lambda e, s: seen.append((e, s)))
    try:
        store.add("e", "t", {})
        store.transition("e", ExecState.PLACED)
        store.transition("e", ExecState.CANCELLED)
    finally:
        store.close()
    assert seen == [("e", ExecState.PLACED), ("e", ExecState.CANCELLED)]


@contextmanager
def service(run: Path) -> Iterator[SchedulerService]:
    """A real scheduler service on the run folder ``run`` (no agents), with one node."""
    svc = SchedulerService(RunPaths(run).create(), Config())
    try:
        n = Node("n", b"agent:n", [0, 1])
        n.update({"util": [0.0, 0.0]}, sim_alive=True)
        svc.decider.add_node(n)
        yield svc
    finally:
        svc.wire.sock.close(0)
        svc.store.close()
        svc.profiles.close()


def test_a_restarted_scheduler_still_waits_and_skips(tmp_path: Path, odop_home: Path) -> None:
    specs = {"a": {**SPEC, "name": "a"}, "b": {**SPEC, "name": "b", "depends_on": ["a"]}}
    with service(tmp_path / "run") as svc:
        svc.store.put_tasks(specs)
        svc.decider.specs.update(specs)
        for execution, task, path in (("a1", "a", "x"), ("a2", "a", "y"), ("b1", "b", "x"),
                                      ("b2", "b", "y")):
            svc.lifecycle.queue(execution, task, {"path": path}, origin="test")
        svc._act(svc.decider.cycle(0.0))  # a1 and a2 placed, b1 and b2 wait
        svc.store.transition("a1", ExecState.RUNNING)
        svc.store.transition("a1", ExecState.FAILED, reason="exit 1")
        assert [(svc.store.get(e) or {}).get("state") for e in ("b1", "b2")] == ["queued"] * 2
    with service(tmp_path / "run") as svc:  # restarted from the database
        svc._act(svc.decider.cycle(0.0))
        svc._skip_doomed()
        b1, b2 = svc.store.get("b1") or {}, svc.store.get("b2") or {}
        assert b1["state"] == "skipped"
        assert b1["reason"] == "depends on a: its execution a1 with the same arguments failed"
        assert b2["state"] == "queued" and "b2" in svc.decider.pending  # a2 is not over
        svc.store.transition("a2", ExecState.RUNNING)
        svc.store.transition("a2", ExecState.DONE)
        svc.decider.release("a2")
        assert [p.pending.execution for p in svc.decider.cycle(0.0)] == ["b2"]
