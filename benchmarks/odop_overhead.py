"""odop's own CPU per node: scheduler + agent (with its observer) + fork server, in CPU
seconds per wall second (percent of one core), at 1 sample/s, measured from /proc.

    python benchmarks/odop_overhead.py [--json] [--seconds 30] [--tasks 20]

Phases: idle (odop running, nothing to do) and busy (a task submitted every second).
Budget (docs/architecture.md): <= 0.5 % of one core per node at 1 sample/s, idle.
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

SIM = '''
import json, os, sys, time, odop

@odop.task(name="blip")
def blip():
    pass

if __name__ == "__main__":
    seconds, busy = float(sys.argv[1]), int(sys.argv[2])
    run = odop.start(run_name="overhead")
    print(json.dumps({"run": str(run.root)}), flush=True)
    sys.stdin.readline()                          # the benchmark's go: idle phase begins
    time.sleep(seconds)
    print("busy", flush=True)
    for _ in range(busy):
        odop.submit("blip")
        time.sleep(1.0)
    print("done", flush=True)
    sys.stdin.readline()
    odop.stop()
'''


def odop_pids(run: Path) -> list[int]:
    from odop.store.executions import RunStore

    store = RunStore(run / "odop.db", readonly=True)
    try:
        pids = [c["pid"] for c in store.components() if not c["ended_at"]]
    finally:
        store.close()
    for pid in list(pids):
        children = Path(f"/proc/{pid}/task/{pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
    return pids


def cpu_s(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(seconds: float, tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "sim.py"
        script.write_text(SIM)
        env = {**os.environ, "ODOP_HOME": str(Path(tmp) / "home")}
        sim = subprocess.Popen([sys.executable, str(script), str(seconds), str(tasks)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert sim.stdin and sim.stdout
        run = Path(json.loads(sim.stdout.readline())["run"])
        time.sleep(5.0)  # warm-up: imports, first samples
        pids = odop_pids(run)
        t0, c0 = time.monotonic(), cpu_s(pids)
        sim.stdin.write("go\n")
        sim.stdin.flush()
        sim.stdout.readline()
        t1, c1 = time.monotonic(), cpu_s(pids)
        sim.stdout.readline()
        t2, c2 = time.monotonic(), cpu_s(odop_pids(run))
        sim.stdin.write("stop\n")
        sim.stdin.flush()
        sim.wait(60)
    return {"idle_pct_of_core": 100 * (c1 - c0) / (t1 - t0),
            "busy_pct_of_core": 100 * (c2 - c1) / (t2 - t1),
            "idle_seconds": t1 - t0, "busy_seconds": t2 - t1, "tasks": tasks,
            "budget_idle_pct": 0.5}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.seconds, args.tasks)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value:.3f}" if isinstance(value, float) else f"{key:>20}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
