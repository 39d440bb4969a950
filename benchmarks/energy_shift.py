"""Virtual-clock replay of carbon-aware deferral (no sleeping, deterministic seeds).

For each synthetic trace (diurnal solar, wind-driven, flat, short dips) with perfect
or noisy forecasts (issued hourly, error growing with lead time), 1,000 deferrable
tasks arrive over two days with durations of 10 min to 6 h and slack of 0-24 h.
Compared on the TRUE signal: odop's planner (re-planning on every new forecast),
run-immediately, the 2-hour-bucket heuristic and the perfect-forecast optimum
(per task without a cap; with a cap, a clairvoyant greedy by marginal cost that
knows every task and the true signal in advance, placing least-slack first, plus
the uncapped per-task lower bound). Usage: python benchmarks/energy_shift.py [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from odop.energy import Forecast, bucket_heuristic
from odop.energy.deferral import DeferralPlanner

TICK = 300.0          # s, the virtual clock and every time in the workload are on it
SLOT = 1800.0         # s, signal resolution
HOURS = 120           # trace length
ISSUE = 3600.0        # s between forecasts
HORIZON = 48 * 3600.0  # s of forecast
ALLOC_END = 96 * 3600.0
N_TASKS, CAP = 1000, 40


def trace(shape: str, rng: np.random.Generator) -> np.ndarray:
    """True carbon intensity per 30-min slot, gCO2/kWh."""
    t = np.arange(HOURS * 2) * SLOT / 3600.0
    if shape == "solar":
        sun = np.clip(np.sin((t % 24 - 6) / 12 * np.pi), 0, None)
        return 380 - 260 * sun * rng.uniform(0.6, 1.0, HOURS // 24 + 1)[(t // 24).astype(int)]
    if shape == "wind":
        walk = np.cumsum(rng.normal(0, 1, t.size))
        walk = np.convolve(walk - walk.mean(), np.ones(8) / 8, mode="same")
        return np.clip(300 + 40 * walk, 60, 600)
    if shape == "dips":  # flat grid with short clean dips: buckets average them away
        base = np.full(t.size, 320.0) + rng.normal(0, 5, t.size)
        dips = rng.choice(t.size, t.size // 12, replace=False)
        base[dips] = 90.0
        return base
    return np.full(t.size, 300.0)


def forecast_at(true: np.ndarray, issue: float, noisy: bool, seed: int) -> Forecast:
    """The forecast issued at ``issue``: true values plus lead-growing AR(1) error."""
    i0 = int(issue // SLOT)
    n = int(HORIZON // SLOT)
    vals = true[np.clip(np.arange(i0, i0 + n), 0, true.size - 1)].copy()
    if noisy:
        rng = np.random.default_rng([seed, i0])
        lead_h = np.arange(n) * SLOT / 3600.0
        z = np.zeros(n)
        for k in range(1, n):
            z[k] = 0.8 * z[k - 1] + 0.6 * rng.normal()
        vals *= 1 + (0.03 + 0.12 * np.minimum(1, lead_h / 24)) * z
    return Forecast((i0 + np.arange(n)) * SLOT, SLOT, np.maximum(vals, 1.0), issued_at=issue)


def workload(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrivals, durations, deadlines (s) and energies (J), all on the 5-min grid."""
    arrival = rng.integers(0, 48 * 12, N_TASKS) * TICK
    duration = np.round(np.exp(rng.uniform(np.log(2), np.log(72), N_TASKS))) * TICK
    slack = rng.integers(0, 24 * 12 + 1, N_TASKS) * TICK
    power = rng.uniform(50, 400, N_TASKS)
    return {"arrival": arrival, "duration": duration, "deadline": arrival + duration + slack,
            "energy": power * duration}


def grams(true: np.ndarray, starts: np.ndarray, w: dict) -> float:
    """Emissions on the true signal, summed over tasks (independent fine-grid integral)."""
    fine = np.repeat(true, int(SLOT // TICK))
    cum = np.concatenate([[0.0], np.cumsum(fine * TICK)])
    c0 = np.round(starts / TICK).astype(int)
    c1 = c0 + np.round(w["duration"] / TICK).astype(int)
    last = cum.size - 1
    integ = cum[np.minimum(c1, last)] - cum[np.minimum(c0, last)]
    return float(np.sum(w["energy"] / w["duration"] * integ / 3.6e6))


def optimum_nocap(true: np.ndarray, w: dict) -> np.ndarray:
    """Per-task best start on the true signal by brute force over the 5-min grid."""
    fine = np.repeat(true, int(SLOT // TICK))
    cum = np.concatenate([[0.0], np.cumsum(fine * TICK)])
    out = np.empty(N_TASKS)
    for j in range(N_TASKS):
        k = int(w["duration"][j] // TICK)
        a = int(w["arrival"][j] // TICK)
        b = int(min(w["deadline"][j], ALLOC_END) // TICK) - k
        if b < a:
            out[j] = w["arrival"][j]
            continue
        s = np.arange(a, b + 1)
        out[j] = s[np.argmin(cum[s + k] - cum[s])] * TICK
    return out


def replay_planner(true, w, noisy, seed, cap: float,
                   planner_cls: type[DeferralPlanner] = DeferralPlanner) -> np.ndarray:
    """odop: the scheduler's own planner on the virtual clock. Each tick: completions,
    the forecast when one is issued, arrivals, then what the plan says is due starts,
    least slack first, as long as fewer than ``cap`` tasks run."""
    planner = planner_cls()
    planner.set_capacity(cap)
    start = np.full(N_TASKS, np.nan)
    arrivals = _by_tick(w["arrival"])
    ends: dict[int, float] = {}
    tick = 0
    while np.isnan(start).any():
        now = tick * TICK
        for j in [j for j, e in ends.items() if e <= now]:
            planner.finish(j, now)
            del ends[j]
        if now % ISSUE == 0:
            planner.set_forecast(forecast_at(true, now, noisy, seed))
        for j in arrivals.get(tick, ()):
            planner.add(int(j), cores=1.0, duration_s=w["duration"][j], energy_j=w["energy"][j],
                        earliest=now, end_by=min(w["deadline"][j], ALLOC_END))
        for j in planner.due(now)[:max(0, int(min(cap, N_TASKS)) - len(ends))]:
            start[j] = now
            ends[j] = now + w["duration"][j]
            planner.start(j, now, 1.0, w["duration"][j])
        tick += 1
    return start


def _by_tick(times: np.ndarray) -> dict[int, np.ndarray]:
    return {int(a): np.flatnonzero(times == a * TICK) for a in np.unique(times // TICK)}


def replay_nocap(true, w, noisy, seed) -> np.ndarray:
    """The 2-hour buckets, re-planned at every forecast issue (no capacity limit)."""
    start = np.full(N_TASKS, np.nan)
    for k in range(int(ALLOC_END // ISSUE)):
        t0, t1 = k * ISSUE, (k + 1) * ISSUE
        idx = np.flatnonzero(np.isnan(start) & (w["arrival"] < t1))
        if idx.size == 0:
            continue
        fc = forecast_at(true, t0, noisy, seed)
        earliest = np.maximum(w["arrival"][idx], t0)
        plan = np.array([bucket_heuristic(fc, w["duration"][j], e, w["deadline"][j], ALLOC_END)
                         for j, e in zip(idx, earliest, strict=True)])
        go = plan < t1
        start[idx[go]] = plan[go]
    return np.where(np.isnan(start), w["arrival"], start)


def clairvoyant(true: np.ndarray, w: dict) -> dict[int, float]:
    """Planned starts with every task and the true signal known in advance: the same
    slot filling, all tasks at once, with no headroom and no safety margin kept."""
    planner = DeferralPlanner(headroom=0.0, urgent_s=0.0)
    planner.set_forecast(Forecast(np.arange(true.size) * SLOT, SLOT, true))
    planner.set_capacity(CAP)
    for j in range(N_TASKS):
        planner.add(j, cores=1.0, duration_s=w["duration"][j], energy_j=w["energy"][j],
                    earliest=w["arrival"][j], end_by=min(w["deadline"][j], ALLOC_END))
    planner.plan(0.0)
    return {int(j): s for j, s in planner.starts.items()}


def replay_cap(true, w, noisy, seed, method) -> np.ndarray:
    """Starts on a 5-min virtual clock with at most CAP tasks running at once (baselines)."""
    start = np.full(N_TASKS, np.nan)
    plans: dict[int, float] = clairvoyant(true, w) if method == "optimum" else {}
    arrivals = _by_tick(w["arrival"])
    ends: list[float] = []
    fc = None
    for tick in range(int((ALLOC_END + 40 * 3600) // TICK)):
        now = tick * TICK
        ends = [e for e in ends if e > now]
        if method == "bucket" and now % ISSUE == 0:
            fc = forecast_at(true, now, noisy, seed)
            plans.update({j: bucket_heuristic(fc, w["duration"][j], now, w["deadline"][j],
                                              ALLOC_END) for j in plans})
        for j in arrivals.get(tick, ()) if method != "optimum" else ():
            plans[int(j)] = now if method == "immediate" else bucket_heuristic(
                fc, w["duration"][j], now, w["deadline"][j], ALLOC_END)
        ready = sorted((p, j) for j, p in plans.items() if p <= now)
        for _, j in ready[:max(0, CAP - len(ends))]:
            start[j] = now
            ends.append(now + w["duration"][j])
            plans.pop(j)
    return start


def run_case(shape: str, noisy: bool, cap: bool, seed: int) -> dict:
    """One trace: emissions, deadline misses and delays of each method, and the ratios."""
    true = trace(shape, np.random.default_rng([seed, 1]))
    w = workload(np.random.default_rng([seed, 2]))
    t0 = time.perf_counter()
    starts = {"odop": replay_planner(true, w, noisy, seed, CAP if cap else math.inf)}
    odop_s = time.perf_counter() - t0
    if cap:
        starts.update({m: replay_cap(true, w, noisy, seed, m)
                       for m in ("immediate", "bucket", "optimum")})
        bound = grams(true, optimum_nocap(true, w), w)
    else:
        starts.update({"bucket": replay_nocap(true, w, noisy, seed),
                       "immediate": w["arrival"].copy(), "optimum": optimum_nocap(true, w)})
        bound = None
    g = {m: grams(true, s, w) for m, s in starts.items()}
    late = {m: int(np.sum(s + w["duration"] > np.minimum(w["deadline"], ALLOC_END) + 1e-6))
            for m, s in starts.items()}
    delay = {m: round(float(np.percentile(s - w["arrival"], 95)) / 3600, 2)
             for m, s in starts.items()}
    out = {"grams": {m: round(v, 1) for m, v in g.items()},
           "deadline_misses": late, "p95_delay_h": delay,
           "saving_vs_immediate_pct": round(100 * (1 - g["odop"] / g["immediate"]), 2),
           "ratio_to_optimum": round(g["odop"] / g["optimum"], 4),
           "ratio_to_bucket_heuristic": round(g["odop"] / g["bucket"], 4),
           "odop_replay_s": round(odop_s, 2)}
    if bound is not None:
        out["ratio_to_uncapped_lower_bound"] = round(g["odop"] / bound, 4)
    return out


def replan_cost(queued: int = N_TASKS, repeats: int = 5) -> dict:
    """Milliseconds per re-plan (median) of the scheduler's planner with ``queued`` waiting
    tasks (the workload's, all arrived at 0 with their slack): under a cap of 4 x CAP
    cores, where they fit, under CAP, where most of them cannot, and without a cap."""
    true = trace("solar", np.random.default_rng([7, 1]))
    w = workload(np.random.default_rng([7, 2]))
    out = {}
    for name, cap in (("cap", 4 * CAP), ("overloaded", CAP), ("nocap", math.inf)):
        planner = DeferralPlanner()
        planner.set_capacity(cap)
        times = []
        for r in range(repeats):
            planner.set_forecast(forecast_at(true, 0.0, False, 7))  # a new forecast: all re-planned
            for j in range(queued):
                planner.add(j, cores=1.0, duration_s=w["duration"][j], energy_j=w["energy"][j],
                            earliest=0.0, end_by=w["deadline"][j] - w["arrival"][j])
            t0 = time.perf_counter()
            planner.plan(float(r))
            times.append(time.perf_counter() - t0)
        out[f"replan_ms_{name}"] = round(1000 * float(np.median(times)), 1)
    return {"queued": queued, **out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    t0 = time.perf_counter()
    results = {}
    for shape in ("solar", "wind", "flat", "dips"):
        for noisy in (False, True):
            for cap in (False, True):
                key = f"{shape}/{'noisy' if noisy else 'perfect'}/{'cap' if cap else 'nocap'}"
                results[key] = run_case(shape, noisy, cap, seed=7)
    report = {"planner": f"{DeferralPlanner.__module__}.{DeferralPlanner.__qualname__}",
              "tasks": N_TASKS, "cap": CAP, "replan_cost": replan_cost(), "traces": results,
              "wall_s": round(time.perf_counter() - t0, 2)}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for key, r in results.items():
        print(f"{key:24s} saving {r['saving_vs_immediate_pct']:6.2f} %  "
              f"opt {r['ratio_to_optimum']:.4f}  bucket {r['ratio_to_bucket_heuristic']:.4f}  "
              f"misses {r['deadline_misses']}  p95 delay h {r['p95_delay_h']}")
    cost = report["replan_cost"]
    print(f"one re-plan of {cost['queued']} waiting tasks: {cost['replan_ms_cap']} ms "
          f"(overloaded: {cost['replan_ms_overloaded']}, no cap: {cost['replan_ms_nocap']})")
    print(f"wall {report['wall_s']} s")


if __name__ == "__main__":
    main()
