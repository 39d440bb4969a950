"""odop against the ways post-processing is run today, on the demo heat simulation.

The canonical workload: the demo MPI heat simulation (``python -m odop.demo.heat`` under
``mpiexec -bind-to core``) writes 5 snapshots; each gets a ``reduce`` and a ``compress``
task (about 0.5 s of CPU per snapshot). Four scenarios on a machine of C cores:

- ``gpu_like``:  max(1, C/4) rank(s) that mostly wait (``--io-sleep`` every step, marked
  as an ``io`` phase), like a GPU code holding one core each and leaving the rest idle;
- ``cpu_spare``: C - 1 CPU-bound ranks, one spare core (like ``all_busy``, 4x the steps);
- ``phased``:    C ranks alternating compute and io-sleep phases (odop may lend a rank's
  core during its ``io`` phase; 2x the steps);
- ``all_busy``:  C CPU-bound ranks, no idle core;
- ``wrapped_gpu_like``, ``wrapped_phased``, ``wrapped_all_busy``: the same three with an
  unchanged simulation (``--mode none``: no ``odop.start``, no ``odop.phase`` marks), its
  ranks unbound as MPICH starts them, under ``odop run`` with the snapshot's tasks as one
  Python-script task on a file trigger (``python compare_post.py {path} OUT``, the very
  command the watchers start).

Each scenario runs every way of :mod:`compare_runs` (the simulation alone, tasks after it,
a ``nice -n 19`` watcher in the simulation's session and in per-task sessions with
autogroup nice 19, odop with each selection algorithm) in several interleaved rounds. In
a round the ways run in an order that rotates by one per round, each between two runs of
``none`` (the simulation alone), so that every run has the simulation alone beside it
(``alone_s``: the two loop times). Per scenario and way, medians over the runs:
``makespan_s`` (launch -> simulation and every task done), ``makespan_paired_s`` (the
median ``none`` loop plus the makespan's excess over each ``alone_s`` beside it),
``tail_s`` (the makespan beyond the simulation's own loop: what the way of
post-processing adds), ``sim_slowdown_pct`` (the simulation's own wall time against each
``alone_s`` beside it), ``sim_waited_pct`` (how long its ranks waited for a CPU, summed,
against its wall time), ``harvested_core_s`` (task CPU seconds done while the simulation
ran), ``verified`` (every run's outputs checked by ``odop.demo.verify``) and ``runs``.
Then the targets: odop's makespan below ``after`` where cores are idle and within 3 % of
the best background variant (both as ``makespan_paired_s``); odop's simulation slowdown
<= 2 % everywhere. Exits 1 when a target is missed.

    python benchmarks/compare.py [--json] [--rounds 5] [--steps 500] [--quick]

About 60 minutes with the defaults on a quiet 2-core machine, 3 with ``--quick``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odop.cli.argtypes import names_from, positive_int, positive_seconds

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare_runs  # noqa: E402
from compare_runs import WAYS, RunFailed, Scenario, run_way  # noqa: E402

SLOWDOWN_BUDGET_PCT = 2.0
MAKESPAN_MARGIN = 0.03
"""odop's makespan may exceed the best background variant's by this fraction."""
TAIL_MARGIN_S = 0.1
"""odop's drain after the simulation may exceed the last snapshot's task by this (s)."""


CPU_BOUND_STEPS = 4
"""The CPU-bound scenarios (no io sleep, 4-8 sweeps a step) run this many times the steps:
3.5-4 s simulations at the defaults. On a shared VM the host switches between a fast and a
15-20 % slower state every few runs, so a run is compared with the runs of the simulation
alone just before and after it; the shorter the three, the likelier they share a state. Much
shorter, and odop's start-up would dominate: where no core is idle the ranks' first steps
wait about 0.4 s for odop's daemons to start (docs/benchmarks.md)."""

PHASED_STEPS = 2
"""``phased`` runs this many times the steps: 22 s simulations. Its ranks are bound to
every core, so ``odop.start()`` waits about 0.4 s for odop's daemons to start (to keep
their start-up out of the steps where no core may be idle): a fixed cost that a run of
hours does not notice, but 3 % of an 11 s one, which would stand for all of odop's
margin against the background ways."""


def scenarios(cores: int, steps: int) -> list[Scenario]:
    """The four scenarios for a machine of ``cores`` cores: ``steps`` time steps each, times
    :data:`CPU_BOUND_STEPS` for the CPU-bound ones and :data:`PHASED_STEPS` for ``phased``;
    5 snapshots each."""
    long, phased = steps * CPU_BOUND_STEPS, steps * PHASED_STEPS
    return [
        Scenario("gpu_like", max(1, cores // 4), 1, 0.02, steps, max(1, steps // 5),
                 "ranks wait most of the time (io-sleep 20 ms per step); most cores idle"),
        Scenario("cpu_spare", max(1, cores - 1), 4, 0.0, long, max(1, long // 5),
                 "CPU-bound ranks on all cores but one"),
        Scenario("phased", cores, 4, 0.02, phased, max(1, phased // 5),
                 "a rank per core, compute then a 20 ms io phase every step"),
        Scenario("all_busy", cores, 8, 0.0, long, max(1, long // 5),
                 "CPU-bound ranks on every core: no idle core"),
        Scenario("wrapped_gpu_like", max(1, cores // 4), 1, 0.02, steps, max(1, steps // 5),
                 "gpu_like, unchanged under odop run, ranks unbound, script tasks",
                 wrapped=True),
        Scenario("wrapped_phased", cores, 4, 0.02, phased, max(1, phased // 5),
                 "phased, unchanged under odop run, ranks unbound and unmarked",
                 wrapped=True),
        Scenario("wrapped_all_busy", cores, 8, 0.0, long, max(1, long // 5),
                 "all_busy, unchanged under odop run, ranks unbound, script tasks",
                 wrapped=True),
    ]


SCENARIO_NAMES = tuple(sc.name for sc in scenarios(1, 1))


def round_order(ways: list[str], r: int) -> list[str]:
    """The runs of round ``r``: the ways other than ``none`` rotated by ``r``, each between
    two runs of ``none`` (when ``none`` is among ``ways``)."""
    others = [w for w in ways if w != "none"]
    k = r % len(others) if others else 0
    others = others[k:] + others[:k]
    if "none" not in ways:
        return others
    return ["none", *(run for way in others for run in (way, "none"))]


def pair_with_alone(block: list[tuple[str, dict[str, Any]]]) -> None:
    """Set ``alone_s`` on each run of one scenario's round: the simulation times of the
    nearest ``none`` run before it and after it (a ``none`` run: its own)."""
    alone = [(i, res["sim_wall_s"]) for i, (way, res) in enumerate(block)
             if way == "none" and "error" not in res]
    for i, (way, res) in enumerate(block):
        if "error" in res:
            continue
        if way == "none":
            res["alone_s"] = [res["sim_wall_s"]]
            continue
        near = [s for j, s in alone if j < i][-1:] + [s for j, s in alone if j > i][:1]
        if near:
            res["alone_s"] = near


def run_rounds(scs: list[Scenario], ways: list[str], rounds: int, home: Path,
               log: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every scenario x way ``rounds`` times, in the order :func:`round_order` gives."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc.name: {w: [] for w in ways} for sc in scs}
    for r in range(rounds):
        order = round_order(ways, r)
        for sc in scs:
            block = []
            for n, way in enumerate(order):
                tag = f"{sc.name}-{way}-{r}-{n}"
                try:
                    res = run_way(sc, way, home, tag)
                except (RunFailed, OSError, ValueError) as exc:
                    res = {"error": str(exc)[:300]}
                log(f"round {r + 1}/{rounds} {sc.name:9s} {way:15s} " + _brief(res))
                block.append((way, res))
                results[sc.name][way].append(res)
            pair_with_alone(block)
    return results


def _brief(res: dict[str, Any]) -> str:
    if "error" in res:
        return f"FAILED: {res['error'][:120]}"
    return (f"makespan {res['makespan_s']:6.2f} s  sim {res['sim_wall_s']:6.2f} s  "
            f"harvested {res['harvested_core_s']:5.2f} core-s  verified {res['verified']}")


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None


def _beside(runs: list[dict[str, Any]], of: Callable[[dict[str, Any], float], float]
            ) -> float | None:
    """Median of ``of(run, alone)`` over every run and each simulation-alone time beside it
    (``alone_s``).

    One figure per neighbour, not one against their mean: the host here switches between a
    fast and a 15-20 % slower state every few runs, and at a switch one of the two
    neighbours still shares the run's state. Its figure lands among the others, the other
    one in a tail, where the median ignores it."""
    vals = [of(r, a) for r in runs for a in r.get("alone_s", [])]
    return statistics.median(vals) if vals else None


def summarise(runs_by_way: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Medians per way; the slowdown and ``makespan_paired_s`` against the ``none`` runs
    beside each run."""
    ok = {w: [r for r in rs if "error" not in r] for w, rs in runs_by_way.items()}
    alone = _median(ok.get("none", []), "sim_wall_s")
    out: dict[str, dict[str, Any]] = {}
    for way, rs in ok.items():
        sim = _median(rs, "sim_wall_s")
        slowdown = _beside(rs, lambda r, a: r["sim_wall_s"] / a)
        # a difference, not a ratio: the tail barely moves with the host's speed, so a
        # ratio to the loop time would move with it
        excess = _beside(rs, lambda r, a: r["makespan_s"] - a)
        checked = [r["verified"] for r in rs if r["verified"] is not None]
        out[way] = {
            "makespan_s": _median(rs, "makespan_s"),
            "makespan_paired_s": (round(alone + excess, 3)
                                  if alone is not None and excess is not None else None),
            "sim_wall_s": sim,
            "tail_s": _median(rs, "tail_s"),
            "sim_slowdown_pct": round(100 * (slowdown - 1), 2) if slowdown is not None else None,
            "sim_slowdown_of_medians_pct": (round(100 * (sim - alone) / alone, 2)
                                            if sim is not None and alone else None),
            "sim_waited_pct": _median(rs, "sim_waited_pct"),
            "harvested_core_s": _median(rs, "harvested_core_s"),
            "verified": (all(checked) and len(checked) == len(rs)) if checked else None,
            "runs": len(rs),
            "makespan_runs_s": [round(r["makespan_s"], 2) for r in rs],
            "sim_runs_s": [round(r["sim_wall_s"], 2) for r in rs],
        }
        extra = [k for k in ("drain_s", "started_during_sim", "ended_during_sim", "tasks_cpu_s",
                             "cpu_s_per_snapshot", "last_task_s", "odop_run_exit_s")
                 if rs and k in rs[0]]
        out[way].update({k: _median(rs, k) for k in extra})
        failed = [r["error"] for r in runs_by_way[way] if "error" in r]
        if failed:
            out[way]["failed"] = failed
    return out


def targets(name: str, ways: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether odop's targets hold in one scenario (``None``: not measurable). Makespans
    are compared as ``makespan_paired_s``, each run against the simulation alone beside it."""
    idle = not name.endswith("all_busy")
    after = ways.get("after", {}).get("makespan_paired_s")
    watchers = [ways[w] for w in ("nice", "nice_autogroup") if w in ways]
    bg = [w["makespan_paired_s"] for w in watchers if w.get("makespan_paired_s") is not None]
    bg_cpu = [w["cpu_s_per_snapshot"] for w in watchers
              if w.get("cpu_s_per_snapshot") is not None]
    out: dict[str, Any] = {}
    for way, s in ways.items():
        if not way.startswith("odop_") or s["makespan_s"] is None:
            continue
        m, slow = s["makespan_paired_s"], s["sim_slowdown_pct"]
        tail, last = s.get("drain_s"), s.get("last_task_s")
        cpu = s.get("cpu_s_per_snapshot")
        out[way] = {
            "below_sequential": (m < after) if idle and None not in (m, after) else None,
            "within_3pct_of_best_background": (m <= (1 + MAKESPAN_MARGIN) * min(bg)
                                               if idle and bg and m is not None else None),
            "not_behind_best_background": m <= min(bg) if bg and m is not None else None,
            "slowdown_within_2pct": slow <= SLOWDOWN_BUDGET_PCT if slow is not None else None,
            "tail_within_last_task": (tail <= last + TAIL_MARGIN_S
                                      if idle and None not in (tail, last) else None),
            "cpu_per_snapshot_below_background": (cpu < min(bg_cpu)
                                                  if bg_cpu and cpu is not None else None),
        }
    return out


def machine() -> dict[str, Any]:
    model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": len(os.sched_getaffinity(0)),
            "kernel": platform.release(), "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
            "autogroup": _read("/proc/sys/kernel/sched_autogroup_enabled")}


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def table(name: str, ways: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of one scenario's medians (as pasted in docs/benchmarks.md)."""
    rows = [f"| {name} | makespan s | paired s | sim s | beyond sim s | sim slowdown % "
            "| ranks waited % | harvested core-s | verified | runs |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for way, s in ways.items():
        text = ["—" if s.get(k) is None else f"{s[k]:.2f}"
                for k in ("makespan_s", "makespan_paired_s", "sim_wall_s", "tail_s",
                          "sim_slowdown_pct", "sim_waited_pct", "harvested_core_s")]
        verified = "—" if s["verified"] is None else ("yes" if s["verified"] else "NO")
        rows.append(f"| {way} | {' | '.join(text)} | {verified} | {s['runs']} |")
    return "\n".join(rows)


def _holds(all_targets: dict[str, Any]) -> bool:
    return all(v is not False for sc in all_targets.values() for t in sc.values()
               for v in t.values())


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--rounds", type=positive_int, default=None,
                    help="rounds (default 5, quick 1)")
    ap.add_argument("--quick", action="store_true", help="1 round of shorter simulations")
    ap.add_argument("--steps", type=positive_int, default=None,
                    help="time steps per simulation (default 500, quick 60; "
                         f"x{CPU_BOUND_STEPS} for the CPU-bound scenarios, "
                         f"x{PHASED_STEPS} for phased)")
    ap.add_argument("--only", type=names_from(SCENARIO_NAMES), default=list(SCENARIO_NAMES),
                    metavar="SCENARIOS",
                    help="comma list of scenarios to run (default all: "
                         f"{','.join(SCENARIO_NAMES)})")
    ap.add_argument("--ways", type=names_from(WAYS), default=list(WAYS), metavar="WAYS",
                    help=f"comma list of ways to run (default all: {','.join(WAYS)})")
    ap.add_argument("--keep", action="store_true", help="keep the ODOP_HOME with the run DBs")
    ap.add_argument("--run-timeout", type=positive_seconds, default=None,
                    help="seconds before one run counts as failed (default 240)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rounds = args.rounds or (1 if args.quick else 5)
    steps = args.steps or (60 if args.quick else 500)
    if args.run_timeout:
        compare_runs.RUN_TIMEOUT_S = args.run_timeout
    info = machine()
    scs = [sc for sc in scenarios(info["cores"], steps) if sc.name in args.only]
    home = Path(tempfile.mkdtemp(prefix="odop-compare-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        raw = run_rounds(scs, args.ways, rounds, home,
                         lambda m: print(m, file=sys.stderr, flush=True))
    finally:
        if args.keep:
            print(f"kept {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    info["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    summary = {sc.name: summarise(raw[sc.name]) for sc in scs}
    checks = {name: targets(name, s) for name, s in summary.items()}
    out = {"date": started.isoformat(timespec="seconds"), "machine": info, "rounds": rounds,
           "steps": steps, "wall_s": round((datetime.datetime.now(datetime.timezone.utc)
                                             - started).total_seconds(), 1),
           "scenarios": summary, "targets": checks, "targets_hold": _holds(checks),
           "scenario_params": {sc.name: {"ranks": sc.ranks, "steps": sc.steps,
                                         "compute_scale": sc.compute_scale,
                                         "io_sleep_s": sc.io_sleep, "every": sc.every,
                                         "about": sc.about} for sc in scs}}
    if args.json:
        print(json.dumps(out))
    else:
        for name, s in summary.items():
            print(f"\n{table(name, s)}")
        print(json.dumps({"targets": checks, "targets_hold": out["targets_hold"]}, indent=1))
    return 0 if out["targets_hold"] else 1


if __name__ == "__main__":
    sys.exit(main())
