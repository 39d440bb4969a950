from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from odop.plugins import PLACEMENTS, SELECTIONS
from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider
from odop.scheduler.fit import cores_wanted
from odop.scheduler.freeindex import FreeIndex
from odop.scheduler.placement import make_placement
from odop.scheduler.selection import Pending, Queue, Selection, make_selection

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
                   "round_robin": ("a", [0]), "gpu_aware": ("a", [0])}
    rr = make_placement("round_robin")
    assert [rr.place(free, 1, 1)[0] for _ in range(4)] == ["a", "b", "c", "a"]  # type: ignore[index]
    assert make_placement("first_fit").place(free, 4, 4) is None


# -- the incremental structures agree with recomputing everything from scratch ------------
def test_free_index_answers_like_a_scan() -> None:
    rng = random.Random(7)
    index = FreeIndex()
    plain: dict[str, list[int]] = {}
    for _ in range(400):
        name = f"n{rng.randrange(12):02d}"
        cores = sorted(rng.sample(range(16), rng.randrange(0, 5)))
        index.set(name, cores)
        plain[name] = cores
        want = rng.randrange(1, 5)
        fits = [(len(c), n) for n, c in plain.items() if len(c) >= want]
        assert index.first(want) == next((n for n, c in plain.items() if len(c) >= want), None)
        assert index.tightest(want) == (min(fits)[1] if fits else None)
        assert index.loosest(want) == (max(fits)[1] if fits else None)
        assert index.total == sum(map(len, plain.values()))
        assert index.max_count() == max(map(len, plain.values()))
        assert dict(index) == plain


def test_queue_order_matches_the_selection_through_adds_and_removals() -> None:
    rng = random.Random(3)
    for name, cls in SELECTIONS.items():
        q = Queue(cls())
        for i in range(300):
            op = rng.random()
            if op < 0.6 or not q:
                k = rng.randrange(60)
                q[f"e{k}"] = pend(k, priority=rng.randrange(3), expected_s=rng.choice(
                    [None, 1.0, 2.0]), deadline=rng.choice([None, 5.0, 9.0]))
            elif op < 0.9:
                del q[rng.choice(list(q))]
            else:
                q.pop(rng.choice(list(q)))
            want = [p.execution for p in cls().order(list(q.values()), 0.0)]
            assert [p.execution for p in q.ordered(0.0)] == want, (name, i)
        q.clear()
        assert list(q.ordered(0.0)) == []


def test_a_selection_that_overrides_order_is_asked_every_cycle() -> None:
    class Newest(Selection):
        name = "newest"

        def order(self, pending: Sequence[Pending], now: float) -> list[Pending]:
            return sorted(pending, key=lambda p: -p.submitted_at)

    d = Decider(Newest(), make_placement("first_fit"))
    d.specs["t"] = dict(SPEC)
    d.add_node(node("a", 1))
    for i in range(3):
        d.enqueue(pend(i))
    assert [p.pending.execution for p in d.cycle(0.0)] == ["e2"]
    with pytest.raises(TypeError):
        type("Empty", (Selection,), {"name": "empty"})


def _ref_sim_cores(n: Node, threshold: float) -> set[int]:
    if n.reported_bound:
        return set(n.sim_bound)
    if not n.sim_n:
        return set()
    busy = sorted(((u, c) for c, u in zip(n.cores, n.util, strict=False)
                   if u > threshold and c not in n.granted), reverse=True)
    return {c for _, c in busy[:max(0, math.ceil(n.sim_cpu - 0.5))]}


def _ref_free(d: Decider) -> dict[str, list[int]]:
    out = {}
    for name, n in d.nodes.items():
        busy = set(n.granted) | (_ref_sim_cores(n, d.busy_threshold) if d.sim_running else set())
        out[name] = [c for c in n.cores if c not in busy] if n.sampled else []
    return out


class _RefPlace:
    """The placements as plain scans over a dict, as first written."""

    def __init__(self, name: str) -> None:
        self.name, self.next = name, 0

    def place(self, free: dict[str, list[int]], lo: int, hi: int) -> tuple[str, list[int]] | None:
        fits = [(len(c), n) for n, c in free.items() if len(c) >= lo]
        names = list(free)
        pick = None
        if self.name in ("first_fit", "gpu_aware"):  # no GPUs here: gpu_aware is first fit
            pick = next((n for n, c in free.items() if len(c) >= lo), None)
        elif self.name == "best_fit":
            pick = min(fits)[1] if fits else None
        elif self.name == "worst_fit":
            pick = max(fits)[1] if fits else None
        else:
            for i in range(len(names)):
                n = names[(self.next + i) % len(names)]
                if len(free[n]) >= lo:
                    self.next, pick = (self.next + i + 1) % len(names), n
                    break
        return None if pick is None else (pick, list(free[pick][:hi]))


def _ref_cycle(d: Decider, ref: _RefPlace, now: float) -> list[tuple[str, str, list[int]]]:
    free, per_task = _ref_free(d), Counter(d.per_task)
    left, out = sum(map(len, free.values())), []
    for p in d.selection.order(list(d.pending.values()), now):
        if left <= 0:
            break
        spec = d.specs.get(p.task)
        if spec is None or p.not_before > now:
            continue
        if spec.get("max_runs") is not None and per_task[p.task] >= spec["max_runs"]:
            continue
        choice = ref.place(free, *cores_wanted(spec))
        if choice is None:
            continue
        name, cores = choice
        free[name] = [c for c in free[name] if c not in cores]
        left -= len(cores)
        per_task[p.task] += 1
        out.append((p.execution, name, cores))
    return out


def _random_view(rng: random.Random, cores: int) -> dict[str, object]:
    util = [rng.choice([0.0, 0.2, 0.7, 0.9, 1.0]) for _ in range(cores)]
    if rng.random() < 0.5:
        bound = sorted(rng.sample(range(cores), rng.randrange(cores)))
        return {"util": util, "sim_bound": bound,
                "sim_use": [rng.choice([0.1, 0.9]) for _ in bound]}
    return {"util": util, "sim_bound": [], "sim_n": rng.randrange(3),
            "sim_cpu": rng.random() * cores}


@pytest.mark.parametrize("selection", sorted(SELECTIONS))
@pytest.mark.parametrize("placement", sorted(PLACEMENTS))
def test_incremental_cycle_equals_recomputing_everything(selection: str, placement: str) -> None:
    rng = random.Random(f"{selection}/{placement}")
    d = Decider(make_selection(selection), make_placement(placement))
    ref = _RefPlace(placement)
    d.specs.update({"one": {"cpus_min": 1.0, "cpus_max": 1.0},
                    "two": {"cpus_min": 2.0, "cpus_max": 3.0},
                    "cap": {"cpus_min": 1.0, "cpus_max": 1.0, "max_runs": 2}})
    for k in range(4):
        d.add_node(node(f"n{k}", 6))
    for step in range(250):
        op = rng.random()
        if op < 0.35:
            d.enqueue(Pending(f"e{step}", rng.choice(["one", "two", "cap", "gone"]), {},
                              float(step), priority=rng.randrange(3),
                              expected_s=rng.choice([None, 1.0, 3.0]),
                              deadline=rng.choice([None, 10.0, 20.0]),
                              not_before=rng.choice([0.0, 0.0, 1e9])))
        elif op < 0.55:
            d.nodes[f"n{rng.randrange(4)}"].update(_random_view(rng, 6), sim_alive=True)
        elif op < 0.75 and d.active:
            d.release(rng.choice(sorted(d.active)))
        elif op < 0.8 and d.pending:
            del d.pending[rng.choice(sorted(d.pending))]
        elif op < 0.83:
            d.sim_running = not d.sim_running
        elif op < 0.86:
            name = f"n{rng.randrange(4)}"
            d.remove_node(name)
            d.add_node(node(name, 6))
        assert d.free_cores() == _ref_free(d), step
        want = _ref_cycle(d, ref, float(step))
        got = [(p.pending.execution, p.node, p.cores) for p in d.cycle(float(step))]
        assert got == want, step


def test_no_core_offered_while_expected_ranks_are_not_seen_yet() -> None:
    d = decider()
    n = Node("a", b"a", [0, 1])
    n.update({"util": [0.0, 0.0], "sim_expected": True, "sim_n": 0}, sim_alive=True)
    d.add_node(n)
    d.enqueue(pend(0))
    assert d.cycle(0.0) == []
    n.update({"util": [1.0, 0.0], "sim_expected": True, "sim_n": 1, "sim_bound": [0]},
             sim_alive=True)
    assert [p.cores for p in d.cycle(1.0)] == [[1]]


def test_lent_cores_are_offered_and_taken_back() -> None:
    d = decider()
    n = node("a", 2, bound=[0, 1])
    d.add_node(n)
    d.enqueue(pend(0))
    assert d.cycle(0.0) == []
    n.lend(frozenset({0}))
    assert [p.cores for p in d.cycle(1.0)] == [[0]]
    n.lend(frozenset())
    assert n.sim_bound == frozenset({0, 1})


def test_a_waiting_rank_shares_its_core_after_two_samples() -> None:
    d = decider()
    n = node("a", 2, bound=[0, 1])
    d.add_node(n)
    d.enqueue(pend(0))
    waiting = {"util": [0.1, 1.0], "sim_bound": [0, 1], "sim_use": [0.1, 1.0], "sim_n": 2}
    assert n.update(waiting, sim_alive=True) == frozenset()
    assert d.cycle(0.0) == []          # one quiet sample is not enough
    n.update(waiting, sim_alive=True)
    assert n.shared == frozenset({0})
    assert [p.cores for p in d.cycle(1.0)] == [[0]]
    busy = {**waiting, "sim_use": [0.8, 1.0]}
    assert n.update(busy, sim_alive=True) == frozenset({0})   # to be taken back
    assert n.sim_bound == frozenset({0, 1}) and n.shared == frozenset()


def test_sharing_follows_the_threshold_and_can_be_off() -> None:
    view = {"util": [0.0, 0.0], "sim_bound": [0, 1], "sim_use": [0.3, 0.6], "sim_n": 2}
    for share, threshold, expect in ((True, 0.5, [[0]]), (True, 0.7, [[0], [1]]),
                                     (False, 0.5, [])):
        d = Decider(make_selection("fifo"), make_placement("first_fit"),
                    busy_threshold=threshold, share_bound=share)
        d.specs["t"] = dict(SPEC)
        n = Node("a", b"a", [0, 1])
        d.add_node(n)
        for _ in range(2):
            n.update(view, sim_alive=True)
        d.enqueue(pend(0))
        d.enqueue(pend(1))
        assert [p.cores for p in d.cycle(0.0)] == expect, (share, threshold)


def test_every_bound_core_shared_is_not_mistaken_for_unbound_ranks() -> None:
    n = Node("a", b"a", [0, 1])
    n.share_below = 0.5
    view = {"util": [0.9, 0.9], "sim_bound": [0, 1], "sim_use": [0.1, 0.2], "sim_n": 2,
            "sim_cpu": 1.8}
    for _ in range(2):
        n.update(view, sim_alive=True)
    assert n.free(sim_running=True, threshold=0.5) == [0, 1]


def test_core_limit_caps_the_cores_held_and_narrows_elastic_grants() -> None:
    d = decider()
    d.specs["wide"] = {"cpus_min": 1.0, "cpus_max": 4.0, "max_runs": None}
    d.add_node(node("a", 8))
    d.core_limit = lambda capacity: capacity // 4  # a very dirty grid: a quarter
    d.enqueue(Pending("w", "wide", {}, 0.0))
    for i in range(1, 4):
        d.enqueue(pend(i))
    placed = d.cycle(0.0)
    assert [(p.pending.execution, len(p.cores)) for p in placed] == [("w", 2)]
    assert d.granted == 2 and d.cycle(1.0) == []  # held + free = 8: the limit is 2
    d.core_limit = None  # clean again: every free core
    assert len(d.cycle(2.0)) == 3 and d.granted == 5
    d.release("w")
    assert d.granted == 3


def gpu(index: int, util: float = 0.0, foreign: bool = False) -> dict[str, object]:
    return {"index": index, "util": util, "mem_used": 0, "mem_total": 80 * 2**30,
            "foreign": foreign}


def gpu_node(name: str, cores: int, gpus: list[dict[str, object]]) -> Node:
    n = Node(name, name.encode(), list(range(cores)))
    n.update({"util": [0.0] * cores, "gpus": gpus}, sim_alive=True)
    return n


def test_gpu_tasks_get_idle_gpus_only_and_keep_them_while_paused() -> None:
    d = decider()
    d.specs["infer"] = {"cpus_min": 1.0, "cpus_max": 1.0, "gpus": 1}
    d.add_node(node("cpu", 4))
    # GPU 0 holds a rank's context, GPU 1 is busy with something NVML cannot attribute
    d.add_node(gpu_node("g", 4, [gpu(0, 0.1, foreign=True), gpu(1, 0.9), gpu(2, 0.2), gpu(3)]))
    for i in range(3):
        d.enqueue(Pending(f"i{i}", "infer", {}, float(i)))
    placed = d.cycle(0.0)
    assert [(p.node, p.gpus) for p in placed] == [("g", [3]), ("g", [2])]  # least used first
    assert list(d.pending) == ["i2"] and d.nodes["g"].gpus_granted == {3: "i0", 2: "i1"}
    d.release("i0", keep_gpus=True)  # paused: its cores go, its GPU stays
    assert d.cycle(1.0) == [] and d.gpus_held["i0"] == ("g", [3])
    d.release("i0")  # gone
    assert [(p.pending.execution, p.gpus) for p in d.cycle(2.0)] == [("i2", [3])]


def test_gpu_grants_survive_a_node_coming_back() -> None:
    d = decider()
    d.hold_gpus("x", "g", [1])  # recorded before the node's agent said hello (restart)
    d.add_node(gpu_node("g", 2, [gpu(0), gpu(1)]))
    assert d.nodes["g"].free_gpus(0.5) == [0]


def test_gpu_aware_placement_keeps_cores_beside_idle_gpus() -> None:
    plain = decider("fifo", "first_fit")
    aware = decider("fifo", "gpu_aware")
    for d in (plain, aware):
        d.add_node(gpu_node("a-gpu", 2, [gpu(0)]))
        d.add_node(node("b-cpu", 2))
        d.enqueue(pend(0))
    assert plain.cycle(0.0)[0].node == "a-gpu"
    assert aware.cycle(0.0)[0].node == "b-cpu"
    aware.enqueue(pend(1))
    aware.enqueue(pend(2))
    assert [p.node for p in aware.cycle(1.0)] == ["b-cpu", "a-gpu"]  # then beside the GPU


def test_what_no_node_can_run_is_named_with_why() -> None:
    d = decider()
    d.specs.update({"wide": {"cpus_min": 8.0, "cpus_max": 8.0},
                    "gpus2": {"cpus_min": 1.0, "cpus_max": 1.0, "gpus": 2}})
    assert d.never_fit() == {}  # no node known yet: nothing to judge by
    d.add_node(node("a", 4))
    d.add_node(gpu_node("g", 2, [gpu(0)]))
    for i, task in enumerate(["t", "wide", "gpus2"]):
        d.enqueue(Pending(f"e{i}", task, {}, float(i)))
    assert d.never_fit() == {
        "e1": "needs 8 cores on one node; the largest node has 4",
        "e2": "needs 2 GPU(s) on one node; the most any node has is 1"}


def mem_node(name: str, cores: int, total: int, available: int) -> Node:
    n = Node(name, name.encode(), list(range(cores)))
    n.update({"util": [0.0] * cores, "mem_total": total, "mem_available": available},
             sim_alive=True)
    return n


def test_memory_hungry_tasks_go_where_memory_is_left_and_are_counted_until_seen() -> None:
    GiB = 2**30
    d = decider()
    d.specs["big"] = {"cpus_min": 1.0, "cpus_max": 1.0, "memory_min": 6 * GiB}
    d.add_node(mem_node("tight", 4, 16 * GiB, 5 * GiB))   # the simulation took the rest
    d.add_node(mem_node("roomy", 4, 16 * GiB, 12 * GiB))
    for i in range(3):
        d.enqueue(Pending(f"b{i}", "big", {}, float(i)))
    # 12 GiB free, 1.6 GiB kept for the simulation: one 6 GiB task, then 1.6 GiB short
    assert [p.node for p in d.cycle(0.0)] == ["roomy"]
    d.nodes["roomy"].update({"util": [0.0] * 4, "mem_total": 16 * GiB,
                             "mem_available": 12 * GiB}, sim_alive=True)
    assert d.cycle(1.0) == []  # a sample that does not show it yet: still promised
    d.nodes["roomy"].update({"util": [0.0] * 4, "mem_total": 16 * GiB,
                             "mem_available": 6 * GiB}, sim_alive=True)
    assert d.cycle(2.0) == []  # it now shows in use
    d.enqueue(Pending("h", "t", {}, 3.0, expected_bytes=9 * GiB))  # used 9 GiB before
    d.nodes["roomy"].update({"util": [0.0] * 4, "mem_total": 16 * GiB,
                             "mem_available": 12 * GiB}, sim_alive=True)
    assert [(p.pending.execution, p.node) for p in d.cycle(4.0)] == [("b1", "roomy")]
    d.sim_running = False  # the drain: only the declared minimum counts
    d.nodes["tight"].update({"util": [0.0] * 4, "mem_total": 16 * GiB,
                             "mem_available": 10 * GiB}, sim_alive=False)
    assert sorted(p.pending.execution for p in d.cycle(5.0)) == ["b2", "h"]


def test_a_memory_minimum_no_node_offers_is_named() -> None:
    d = decider()
    d.specs["huge"] = {"cpus_min": 1.0, "cpus_max": 1.0, "memory_min": 2**40}
    d.add_node(mem_node("a", 4, 16 * 2**30, 16 * 2**30))
    d.enqueue(Pending("x", "huge", {}, 0.0))
    assert d.never_fit() == {"x": "needs 1 TiB of memory on one node; the most any node "
                                  "offers is 14.4 GiB (its total less memory_reserve_pct)"}


def test_a_task_over_nodes_gets_equal_grants_on_the_first_that_fit() -> None:
    d = decider()
    d.specs["wide"] = {"cpus_min": 1.0, "cpus_max": 4.0, "nodes": 2}
    d.add_node(node("a", 4, bound=[0, 1, 2, 3]))  # no core free
    d.add_node(node("b", 4, bound=[0]))
    d.add_node(node("c", 4, bound=[0, 1]))
    d.enqueue(Pending("w", "wide", {}, 0.0))
    d.enqueue(pend(1))
    placed = d.cycle(0.0)
    assert [(p.node, p.cores, p.spans) for p in placed] == [("b", [1, 2], [("c", [2, 3])]),
                                                            ("b", [3], [])]
    assert d.granted == 5 and d.nodes["c"].granted == {2: "w", 3: "w"}
    d.release("w")
    assert d.granted == 1 and not d.nodes["c"].granted and d.spans == {}


def test_a_task_over_more_nodes_than_there_are_is_named() -> None:
    d = decider()
    d.specs["wide"] = {"cpus_min": 1.0, "cpus_max": 1.0, "nodes": 3}
    d.add_node(node("a", 2))
    d.add_node(node("b", 2))
    d.enqueue(Pending("w", "wide", {}, 0.0))
    assert d.cycle(0.0) == [] and d.never_fit() == {"w": "needs 3 nodes; the run has 2"}
