"""odop against the ways post-processing is run today, on the demo heat simulation.

The canonical workload: the demo MPI heat simulation (``python -m odop.demo.heat`` under
``mpiexec -bind-to core``) writes 5 snapshots; each gets a ``reduce`` and a ``compress``
task (about 0.5 s of CPU per snapshot). Four scenarios on a machine of C cores:

- ``gpu_like``:  max(1, C/4) rank(s) that mostly wait (``--io-sleep`` every step, marked
  as an ``io`` phase), like a GPU code holding one core each and leaving the rest idle;
- ``cpu_spare``: C - 1 CPU-bound ranks, one spare core (like ``all_busy``, 8x the steps);
- ``phased``:    C ranks alternating compute and io-sleep phases (odop may lend a rank's
  core during its ``io`` phase);
- ``all_busy``:  C CPU-bound ranks, no idle core.

Each scenario runs every way of :mod:`compare_runs` (the simulation alone, tasks after it,
a ``nice -n 19`` watcher in the simulation's session and in per-task sessions with
autogroup nice 19, odop with each selection algorithm), round-robin within each round
(the order rotates per round), several rounds, and reports medians per scenario and way:
``makespan_s`` (launch -> simulation and every task done), ``tail_s`` (the makespan beyond
the simulation's own loop: what the way of post-processing adds), ``sim_slowdown_pct`` (the
simulation's own wall time against ``none``), ``sim_waited_pct`` (how long its ranks
waited for a CPU, summed, against its wall time), ``harvested_core_s`` (task CPU seconds done
while the simulation ran), ``verified`` (every run's outputs checked by
``odop.demo.verify``) and ``runs``. Then the targets: odop's makespan below ``after``
where cores are idle and within 3 % of the best background variant; odop's simulation
slowdown <= 2 % everywhere. Exits 1 when a target is missed.

    python benchmarks/compare.py [--json] [--rounds 3] [--steps 1000] [--quick]

About 35 minutes with the defaults on a quiet 2-core machine, 3 with ``--quick``.
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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compare_runs  # noqa: E402
from compare_runs import WAYS, RunFailed, Scenario, run_way  # noqa: E402

SLOWDOWN_BUDGET_PCT = 2.0
MAKESPAN_MARGIN = 0.03
"""odop's makespan may exceed the best background variant's by this fraction."""


CPU_BOUND_STEPS = 8
"""The CPU-bound scenarios (no io sleep, 4-8 sweeps a step) run this many times the steps,
so that their simulations last about as long as the others (15-25 s at the defaults). A
short one is mostly start-up: where no core is idle the ranks' first steps come after a
0.5 s wait for odop, which alone reads +1.2 % on a 3.5 s loop (docs/benchmarks.md)."""


def scenarios(cores: int, steps: int) -> list[Scenario]:
    """The four scenarios for a machine of ``cores`` cores: ``steps`` time steps each, times
    :data:`CPU_BOUND_STEPS` for the CPU-bound ones; 5 snapshots each."""
    long = steps * CPU_BOUND_STEPS
    return [
        Scenario("gpu_like", max(1, cores // 4), 1, 0.02, steps, max(1, steps // 5),
                 "ranks wait most of the time (io-sleep 20 ms per step); most cores idle"),
        Scenario("cpu_spare", max(1, cores - 1), 4, 0.0, long, max(1, long // 5),
                 "CPU-bound ranks on all cores but one"),
        Scenario("phased", cores, 4, 0.02, steps, max(1, steps // 5),
                 "a rank per core, compute then a 20 ms io phase every step"),
        Scenario("all_busy", cores, 8, 0.0, long, max(1, long // 5),
                 "CPU-bound ranks on every core: no idle core"),
    ]


def run_rounds(scs: list[Scenario], ways: list[str], rounds: int, home: Path,
               log: Any) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Every scenario x way ``rounds`` times; ways round-robin, order rotated per round."""
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        sc.name: {w: [] for w in ways} for sc in scs}
    for r in range(rounds):
        order = ways[r % len(ways):] + ways[:r % len(ways)]
        for sc in scs:
            for way in order:
                tag = f"{sc.name}-{way}-{r}"
                try:
                    res = run_way(sc, way, home, tag)
                except (RunFailed, OSError, ValueError) as exc:
                    res = {"error": str(exc)[:300]}
                log(f"round {r + 1}/{rounds} {sc.name:9s} {way:15s} "
                    + _brief(res))
                results[sc.name][way].append(res)
    return results


def _brief(res: dict[str, Any]) -> str:
    if "error" in res:
        return f"FAILED: {res['error'][:120]}"
    return (f"makespan {res['makespan_s']:6.2f} s  sim {res['sim_wall_s']:6.2f} s  "
            f"harvested {res['harvested_core_s']:5.2f} core-s  verified {res['verified']}")


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None


def paired_slowdown(runs: list[dict[str, Any]], alone: list[dict[str, Any]]) -> float | None:
    """Median over rounds of this way's simulation time against ``none``'s in the same
    round (percent): a slow spell of the host that spans a round cancels out."""
    ratios = [r["sim_wall_s"] / a["sim_wall_s"] - 1 for r, a in zip(runs, alone, strict=False)
              if "error" not in r and "error" not in a and a["sim_wall_s"] > 0]
    return round(100 * statistics.median(ratios), 2) if ratios else None


def summarise(runs_by_way: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Medians per way; the slowdown is paired with ``none`` round by round."""
    ok = {w: [r for r in rs if "error" not in r] for w, rs in runs_by_way.items()}
    alone = _median(ok.get("none", []), "sim_wall_s")
    out: dict[str, dict[str, Any]] = {}
    for way, rs in ok.items():
        sim = _median(rs, "sim_wall_s")
        checked = [r["verified"] for r in rs if r["verified"] is not None]
        out[way] = {
            "makespan_s": _median(rs, "makespan_s"),
            "sim_wall_s": sim,
            "tail_s": _median(rs, "tail_s"),
            "sim_slowdown_pct": paired_slowdown(runs_by_way[way], runs_by_way.get("none", [])),
            "sim_slowdown_of_medians_pct": (round(100 * (sim - alone) / alone, 2)
                                            if sim is not None and alone else None),
            "sim_waited_pct": _median(rs, "sim_waited_pct"),
            "harvested_core_s": _median(rs, "harvested_core_s"),
            "verified": (all(checked) and len(checked) == len(rs)) if checked else None,
            "runs": len(rs),
            "makespan_runs_s": [round(r["makespan_s"], 2) for r in rs],
            "sim_runs_s": [round(r["sim_wall_s"], 2) for r in rs],
        }
        extra = [k for k in ("drain_s", "started_during_sim", "tasks_cpu_s") if rs and k in rs[0]]
        out[way].update({k: _median(rs, k) for k in extra})
        failed = [r["error"] for r in runs_by_way[way] if "error" in r]
        if failed:
            out[way]["failed"] = failed
    return out


def targets(name: str, ways: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether odop's targets hold in one scenario (``None``: not measurable)."""
    idle = name != "all_busy"
    after = ways.get("after", {}).get("makespan_s")
    bg = [ways[w]["makespan_s"] for w in ("nice", "nice_autogroup")
          if ways.get(w, {}).get("makespan_s") is not None]
    out: dict[str, Any] = {}
    for way, s in ways.items():
        if not way.startswith("odop_") or s["makespan_s"] is None:
            continue
        m, slow = s["makespan_s"], s["sim_slowdown_pct"]
        out[way] = {
            "below_sequential": (m < after) if idle and after is not None else None,
            "within_3pct_of_best_background": (m <= (1 + MAKESPAN_MARGIN) * min(bg)
                                               if idle and bg else None),
            "slowdown_within_2pct": slow <= SLOWDOWN_BUDGET_PCT if slow is not None else None,
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
    rows = [f"| {name} | makespan s | sim s | beyond sim s | sim slowdown % | ranks waited % "
            "| harvested core-s | verified | runs |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for way, s in ways.items():
        cells = [s.get(k) for k in ("makespan_s", "sim_wall_s", "tail_s", "sim_slowdown_pct",
                                    "sim_waited_pct", "harvested_core_s")]
        text = ["—" if c is None else f"{c:.2f}" for c in cells]
        verified = "—" if s["verified"] is None else ("yes" if s["verified"] else "NO")
        rows.append(f"| {way} | {' | '.join(text)} | {verified} | {s['runs']} |")
    return "\n".join(rows)


def _holds(all_targets: dict[str, Any]) -> bool:
    return all(v is not False for sc in all_targets.values() for t in sc.values()
               for v in t.values())


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--rounds", type=int, default=None, help="rounds (default 3, quick 1)")
    ap.add_argument("--quick", action="store_true", help="1 round of shorter simulations")
    ap.add_argument("--steps", type=int, default=None,
                    help="time steps per simulation (default 1000, quick 60; "
                         f"x{CPU_BOUND_STEPS} for the CPU-bound scenarios)")
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)  # scenarios, comma list
    ap.add_argument("--ways", default=None, help=argparse.SUPPRESS)  # ways, comma list
    ap.add_argument("--keep", action="store_true", help="keep the ODOP_HOME with the run DBs")
    ap.add_argument("--run-timeout", type=float, default=None,
                    help="seconds before one run counts as failed (default 240)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    steps = args.steps or (60 if args.quick else 1000)
    if args.run_timeout:
        compare_runs.RUN_TIMEOUT_S = args.run_timeout
    info = machine()
    scs = scenarios(info["cores"], steps)
    if args.only:
        scs = [sc for sc in scs if sc.name in args.only.split(",")]
    ways = args.ways.split(",") if args.ways else list(WAYS)
    home = Path(tempfile.mkdtemp(prefix="odop-compare-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    try:
        raw = run_rounds(scs, ways, rounds, home, lambda m: print(m, file=sys.stderr, flush=True))
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
