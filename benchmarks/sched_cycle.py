"""Time of one scheduling cycle (``Decider.cycle(now)``), no I/O, in-process.

1,000 queued one-core tasks on N nodes x 128 cores. Cases:

- ``steady``: the simulation is bound to 120 cores of every node, the other cores are
  granted to running tasks except 8 free cores spread over the cluster; before each
  cycle one node sends a sample (the event that triggers a cycle); the cycle places up
  to 8 tasks. Afterwards (not timed) the placed tasks are released and requeued, so
  every cycle starts from the same state.
- ``steady_unbound``: the same with unbound ranks, found busy by utilisation.
- ``saturated``: no free core at all.
- ``blocked``: 2 free cores per node but every task needs 4: nothing fits.
- ``burst``: the simulation has ended and nothing is granted: one cycle places
  min(1,000, cores) tasks (the worst case, many placements in one cycle).

    python benchmarks/sched_cycle.py [--json] [--quick]

Budget: ``cycle_ms_p50`` (steady, fifo, first_fit, 4 x 128 cores) <= 1.0 ms, and the
cycle must scale to 1,000 nodes (table ``scaling``: nodes -> p50/p99 ms per case).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider
from odop.scheduler.placement import make_placement
from odop.scheduler.selection import Pending, make_selection

BUDGET_MS = 1.0
CORES, SIM_CORES, TASKS, FREE = 128, 120, 1000, 8
SCALES = (4, 16, 64, 256, 1000)


def _node(k: int, *, bound: bool) -> Node:
    n = Node(f"n{k:04d}", f"agent:n{k:04d}".encode(), list(range(CORES)))
    n.update(_view(bound), sim_alive=True)
    return n


def _view(bound: bool, jitter: float = 0.0) -> dict[str, Any]:
    util = [0.97 + jitter] * SIM_CORES + [0.0] * (CORES - SIM_CORES)
    return {"util": util, "sim_bound": list(range(SIM_CORES)) if bound else [],
            "sim_n": SIM_CORES, "sim_cpu": SIM_CORES * (0.97 + jitter)}


def build(nodes: int, case: str, selection: str, placement: str) -> Decider:
    """A decider in the starting state of ``case`` (see the module docstring)."""
    rng = random.Random(nodes)
    d = Decider(make_selection(selection), make_placement(placement))
    want = 4 if case == "blocked" else 1
    d.specs["t"] = {"cpus_min": float(want), "cpus_max": float(want), "max_runs": None}
    d.specs["run"] = {"cpus_min": 1.0, "cpus_max": 1.0, "max_runs": None}
    for k in range(nodes):
        d.add_node(_node(k, bound=case != "steady_unbound"))
    spare = [(k, c) for k in range(nodes) for c in range(SIM_CORES, CORES)]
    keep_free = {"steady": FREE, "steady_unbound": FREE, "saturated": 0,
                 "blocked": 2 * nodes, "burst": len(spare)}[case]
    if case == "blocked":
        free = {(k, c) for k in range(nodes) for c in (SIM_CORES, SIM_CORES + 1)}
    else:
        free = set(rng.sample(spare, keep_free))
    if case == "burst":
        d.sim_running = False
    for k, c in spare:
        if (k, c) not in free:
            d.activate(f"run-{k}-{c}", "run", f"n{k:04d}", [c])
    for i in range(TASKS):
        d.enqueue(Pending(f"e{i}", "t", {}, float(i), priority=rng.randint(0, 9),
                          deadline=1e9 + rng.random() * 1e4, expected_s=rng.random() * 60))
    return d


def measure(nodes: int, case: str, selection: str = "fifo", placement: str = "first_fit",
            rounds: int = 200) -> dict[str, Any]:
    """p50/p99 of ``rounds`` cycles, ms; also the sample-handling time (not in the cycle)."""
    d = build(nodes, case, selection, placement)
    names = list(d.nodes)
    cycle_ns: list[int] = []
    sample_ns: list[int] = []
    placed_n = 0
    gc.collect()
    for r in range(rounds):
        node = d.nodes[names[r % len(names)]]
        t0 = time.perf_counter_ns()
        node.update(_view(case != "steady_unbound", 0.001 * (r % 3)), sim_alive=True)
        t1 = time.perf_counter_ns()
        placed = d.cycle(1e9 + r)
        t2 = time.perf_counter_ns()
        sample_ns.append(t1 - t0)
        cycle_ns.append(t2 - t1)
        placed_n = len(placed)
        for p in placed:  # back to the starting state, untimed
            d.release(p.pending.execution)
            d.enqueue(p.pending)
    return {"nodes": nodes, "cores": nodes * CORES, "case": case, "selection": selection,
            "placement": placement, "placed_per_cycle": placed_n,
            "cycle_ms_p50": _pct(cycle_ns, 50), "cycle_ms_p99": _pct(cycle_ns, 99),
            "sample_ms_p50": _pct(sample_ns, 50)}


def _pct(ns: list[int], q: float) -> float:
    s = sorted(ns)
    return round(s[min(len(s) - 1, int(len(s) * q / 100))] / 1e6, 4)


def run(quick: bool) -> dict[str, Any]:
    rounds = 60 if quick else 300
    head = measure(4, "steady", rounds=rounds)
    cases = [head] + [measure(4, c, rounds=rounds) for c in
                      ("steady_unbound", "saturated", "blocked")]
    cases.append(measure(4, "burst", rounds=max(10, rounds // 10)))
    policies = [measure(4, "steady", s, p, rounds=rounds // 2)
                for s in ("fifo", "priority", "shortest", "deadline")
                for p in ("first_fit", "best_fit", "worst_fit", "round_robin")]
    scaling = []
    for n in SCALES[:3] if quick else SCALES:
        for case in ("steady", "burst"):
            reps = rounds // 2 if case == "steady" else max(5, rounds // 30)
            scaling.append(measure(n, case, rounds=reps))
        scaling.append(measure(n, "steady", "priority", "best_fit", rounds=rounds // 2))
    burst = cases[-1]
    return {"cycle_ms_p50": head["cycle_ms_p50"], "cycle_ms_p99": head["cycle_ms_p99"],
            "burst_cycle_ms_p50": burst["cycle_ms_p50"],
            "burst_cycle_ms_p99": burst["cycle_ms_p99"],
            "burst_placed": burst["placed_per_cycle"],
            "budget_ms": BUDGET_MS, "within_budget": head["cycle_ms_p50"] <= BUDGET_MS,
            "cases": cases, "policies": policies, "scaling": scaling}


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'nodes':>6} {'case':<15} {'selection':<9} {'placement':<11} {'placed':>6} "
             f"{'p50 ms':>8} {'p99 ms':>8} {'sample ms':>9}"]
    lines += [f"{r['nodes']:>6} {r['case']:<15} {r['selection']:<9} {r['placement']:<11} "
              f"{r['placed_per_cycle']:>6} {r['cycle_ms_p50']:>8.3f} {r['cycle_ms_p99']:>8.3f} "
              f"{r['sample_ms_p50']:>9.4f}" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="fewer rounds, up to 64 nodes")
    args = ap.parse_args(argv)
    out = run(args.quick)
    if args.json:
        print(json.dumps(out))
    else:
        print(_table(out["cases"] + out["policies"] + out["scaling"]))
        print(f"cycle_ms_p50={out['cycle_ms_p50']} (budget {BUDGET_MS}) "
              f"p99={out['cycle_ms_p99']} burst_p50={out['burst_cycle_ms_p50']}")
    return 0 if out["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
