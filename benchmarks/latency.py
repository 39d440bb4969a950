"""Submit-to-running latency on one node, in a real run (scheduler, agent, engine).

The benchmark process starts odop as a simulation would (``odop.start()``), then submits a
task whose function records ``time.time()`` on entry, one at a time (waiting for each to
start), ``--n`` times; latency = entry time - time ``odop.submit`` returned. Tasks run under
SCHED_IDLE, so on a node kept busy by others the tail includes the time the kernel gives
them nothing (see ``loadavg``). It runs twice, each in a child process: with the fork
server (the default) and with the fresh-interpreter path (``ODOP_FORK_SERVER=0``). Per hop
(from the run's database): submit returned → placed (scheduler), placed → started (agent:
START received and engine.start returned), started → first instruction (the task).
Usage: python benchmarks/latency.py [--json] [--n N]
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

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TASK = '''
import time
import odop

@odop.task(name="stamp", time="1s", cpus=1)
def stamp(out):
    t = time.time()
    with open(out + ".tmp", "w") as fh:
        fh.write(repr(t))
    import os
    os.rename(out + ".tmp", out)
'''


def measure(n: int, folder: Path) -> dict[str, Any]:
    """In this process: start odop, submit ``n`` times, return per-submission timings (s)."""
    sys.path.insert(0, str(folder))
    import stamp_task  # noqa: F401  (registers the task)

    import odop

    run = odop.start(run_name=f"latency-{os.getpid()}")
    rows = []
    for i in range(n + 5):  # the first five warm the path up and are dropped
        out = folder / f"s{os.getpid()}-{i}"
        execution = odop.submit("stamp", out=str(out))
        t0 = time.time()
        end = time.monotonic() + 30
        while not out.exists():
            if time.monotonic() > end:
                raise SystemExit(f"execution {execution} did not start in 30 s")
            time.sleep(0.001)
        rows.append((execution, t0, float(out.read_text())))
    odop.stop()
    return {"rows": rows[5:], "run": str(run.root)}


def hops(run_dir: str, rows: list[tuple[str, float, float]]) -> dict[str, float]:
    """Median seconds of each hop, from the run's events and executions."""
    import sqlite3

    db = sqlite3.connect(f"file:{run_dir}/odop.db?mode=ro", uri=True)
    placed = {e: t for e, t in db.execute(
        "SELECT execution, MIN(t) FROM events WHERE state='placed' GROUP BY execution")}
    started = dict(db.execute("SELECT id, started_at FROM executions"))
    db.close()
    parts: dict[str, list[float]] = {"submit_to_placed_ms": [], "placed_to_started_ms": [],
                                     "started_to_entry_ms": []}
    for execution, t0, entry in rows:
        p, s = placed.get(execution), started.get(execution)
        if p is None or s is None:
            continue
        parts["submit_to_placed_ms"].append(p - t0)
        parts["placed_to_started_ms"].append(s - p)
        parts["started_to_entry_ms"].append(entry - s)
    return {k: round(float(np.median(v)) * 1000, 2) for k, v in parts.items() if v}


def child(mode: str, n: int, folder: Path) -> dict[str, Any]:
    env = dict(os.environ, ODOP_FORK_SERVER="1" if mode == "forked" else "0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.setdefault("ODOP_HOME", str(folder / "home"))
    out = subprocess.run([sys.executable, __file__, "--child", "--n", str(n),
                          "--folder", str(folder)], env=env, capture_output=True, text=True,
                         cwd=folder, timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    data = json.loads(out.stdout.splitlines()[-1])
    lat = np.array([(entry - t0) * 1000 for _, t0, entry in data["rows"]])
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
            "hops": hops(data["run"], data["rows"]), "n": len(lat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.n, args.folder)))
        return
    with tempfile.TemporaryDirectory(prefix="odop-latency-") as tmp:
        folder = Path(tmp)
        (folder / "stamp_task.py").write_text(TASK)
        forked, fresh = child("forked", args.n, folder), child("fresh", args.n, folder)
    result = {"submissions": forked["n"],
              "submit_to_running_ms_p50": round(forked["p50"], 2),
              "submit_to_running_ms_p99": round(forked["p99"], 2),
              "fresh_submit_to_running_ms_p50": round(fresh["p50"], 2),
              "fresh_submit_to_running_ms_p99": round(fresh["p99"], 2),
              "fresh_over_forked_p50_ratio": round(fresh["p50"] / forked["p50"], 2),
              "hops_forked_ms_p50": forked["hops"], "hops_fresh_ms_p50": fresh["hops"],
              "loadavg_1min_at_end": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
              "budget_p50_ms": 20.0, "within_budget": forked["p50"] <= 20.0}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:34s} {value}")


if __name__ == "__main__":
    main()
