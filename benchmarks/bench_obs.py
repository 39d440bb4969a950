"""Observer tick cost in-process: thread CPU seconds per tick (a micro-benchmark).

The budget (<= 0.5 % of one core at 1 sample/s with 64 followed processes) is judged
from outside the observer process by benchmarks/obs_overhead.py; this script shows
where a tick's time goes. Prints one JSON object; run from the repository root:

    python -m benchmarks.bench_obs [--ticks 200] [--procs 0 8 32] [--cores 128]

``--cores`` also times the per-core /proc/stat parse on a synthetic stat file of that
many cores (this machine may have few), the part of a tick that grows with the node.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from odop_obs import Observer
from odop_obs.fakes import FakeGpu, FakeNvml
from odop_obs.samplers.cpustat import CpuTimes, core_shares


def _tick_cpu(obs: Observer, ticks: int) -> list[float]:
    """CPU seconds of each of ``ticks`` back-to-back ticks (thread CPU time)."""
    costs = []
    for _ in range(ticks):
        start = time.thread_time()
        obs.tick()
        costs.append(time.thread_time() - start)
    return costs


def _observer_case(procs: int, ticks: int, gpus: int) -> dict[str, Any]:
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        for _ in range(procs)
    ]
    try:
        nvml = FakeNvml([FakeGpu() for _ in range(gpus)]) if gpus else None
        obs = Observer.standard(nvml=nvml, gpu=bool(gpus))
        for p in sleepers:
            obs.processes.watch(p.pid, "sim")  # type: ignore[union-attr]
        obs.processes.watch(os.getpid(), "odop")  # type: ignore[union-attr]
        costs = _tick_cpu(obs, ticks)
        obs.close()
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
    median = statistics.median(costs)
    return {
        "watched": procs + 1,
        "gpus": gpus,
        "tick_cpu_ms_median": round(median * 1e3, 3),
        "tick_cpu_ms_p95": round(sorted(costs)[int(0.95 * len(costs))] * 1e3, 3),
        "core_share_at_1hz_pct": round(median * 100, 4),
    }


def _stat_case(cores: int, ticks: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix="stat", delete=False) as f:
        f.write("cpu  1 2 3 4 5 6 7 8 0 0\n")
        f.writelines(f"cpu{i} {i} 0 {i} {10**6 + i} 5 0 1 0 0 0\n" for i in range(cores))
        f.write("intr " + " ".join(["0"] * 2000) + "\nctxt 1\n")
    times = CpuTimes(f.name)
    _, prev = times.read()
    start = time.thread_time()
    for _ in range(ticks):
        _, cur = times.read()
        core_shares(prev, cur)
    cost = (time.thread_time() - start) / ticks
    times.close()
    os.unlink(f.name)
    return {"cores": cores, "cpu_parse_ms": round(cost * 1e3, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--procs", type=int, nargs="*", default=[0, 8, 32])
    ap.add_argument("--gpus", type=int, default=4, help="fake NVML devices")
    ap.add_argument("--cores", type=int, default=128)
    args = ap.parse_args()
    cases = [_observer_case(n, args.ticks, args.gpus) for n in args.procs]
    result = {
        "benchmark": "odop_obs tick overhead",
        "budget_core_share_pct": 0.5,
        "machine_cores": os.cpu_count(),
        "cases": cases,
        "proc_stat": _stat_case(args.cores, args.ticks),
        "within_budget": all(c["core_share_at_1hz_pct"] <= 0.5 for c in cases),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
