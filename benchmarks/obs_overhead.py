"""The standalone observer's own CPU, measured from outside its process.

For each rate (1 and 10 Hz) and each number of followed processes (2, 16, 64
sleeping children), starts ``python -m odop_obs --interval ... --pid ... --out ...``
as a subprocess, waits a warm-up (imports, first ticks), then reads its CPU time
twice from outside: utime + stime of /proc/<pid>/stat (clock ticks, the figure the
budget is judged on) and, as a finer cross-check, the nanosecond run time summed
over /proc/<pid>/task/*/schedstat. Cases run side by side to keep the run short.

    python benchmarks/obs_overhead.py [--json] [--window 60] [--warmup 5]

Budget: <= 0.5 % of one core at 1 Hz following 64 processes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUDGET_PCT = 0.5
RATES_HZ = (1, 10)
COUNTS = (2, 16, 64)
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def stat_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` (all its threads), seconds, from /proc/<pid>/stat."""
    data = Path(f"/proc/{pid}/stat").read_bytes()
    f = data[data.rindex(b")") + 2 :].split()
    return (int(f[11]) + int(f[12])) * _TICK_S


def schedstat_cpu_s(pid: int) -> float:
    """Seconds on CPU of every thread of ``pid``, from /proc/<pid>/task/*/schedstat (ns)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError):
            continue
    return total / 1e9


def _observer(hz: int, pids: list[int], out: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "odop_obs", "--interval", str(1.0 / hz), "--out", out,
           "--json", "--pid", *map(str, pids)]
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _measure(cases: list[dict[str, Any]], warmup_s: float, window_s: float) -> None:
    time.sleep(warmup_s)
    for case in cases:
        pid = case["proc"].pid
        case["t0"], case["s0"], case["n0"] = time.monotonic(), stat_cpu_s(pid), \
            schedstat_cpu_s(pid)
    time.sleep(window_s)
    for case in cases:
        pid, wall = case["proc"].pid, time.monotonic() - case["t0"]
        case["wall_s"] = round(wall, 3)
        case["cpu_s"] = round(stat_cpu_s(pid) - case["s0"], 3)
        case["core_pct"] = round(100 * case["cpu_s"] / wall, 4)
        case["core_pct_schedstat"] = round(100 * (schedstat_cpu_s(pid) - case["n0"]) / wall, 4)


def run(warmup_s: float, window_s: float) -> dict[str, Any]:
    sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(max(COUNTS))]
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for hz in RATES_HZ:
                for n in COUNTS:
                    pids = [p.pid for p in sleepers[:n]]
                    proc = _observer(hz, pids, os.path.join(tmp, f"{hz}hz-{n}"))
                    cases.append({"hz": hz, "followed": n, "proc": proc})
            _measure(cases, warmup_s, window_s)
        finally:
            for case in cases:
                case["proc"].terminate()
            for case in cases:
                out, _ = case.pop("proc").communicate(timeout=30)
                lines = out.decode().strip().splitlines()
                case["samples"] = json.loads(lines[-1])["samples"] if lines else None
                for key in ("t0", "s0", "n0"):
                    case.pop(key, None)
            for p in sleepers:
                p.kill()
                p.wait()
    worst = max(c["core_pct"] for c in cases if c["hz"] == 1)
    return {"benchmark": "odop_obs overhead, measured outside the observer",
            "unit": "percent of one core (CPU seconds per wall second x 100)",
            "machine_cores": os.cpu_count(), "warmup_s": warmup_s, "window_s": window_s,
            "budget_pct_at_1hz_64": BUDGET_PCT, "cases": cases,
            "within_budget": worst <= BUDGET_PCT}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object (default: table)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    ap.add_argument("--window", type=float, default=60.0, help="seconds measured")
    args = ap.parse_args()
    result = run(args.warmup, args.window)
    if args.json:
        print(json.dumps(result))
    else:
        for c in result["cases"]:
            print(f"{c['hz']:>3} Hz {c['followed']:>3} procs: {c['core_pct']:.3f} % of a core "
                  f"(schedstat {c['core_pct_schedstat']:.3f} %), {c['samples']} samples")
        print("within budget" if result["within_budget"] else "OVER BUDGET")
    return 0 if result["within_budget"] else 1


if __name__ == "__main__":
    sys.exit(main())
