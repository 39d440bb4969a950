"""Load: a burst of submissions from several processes, and many very short tasks; none lost.

Two parts, each in a fresh run:

1. ``burst`` — a scheduler (``python -m odop scheduler``) with no agent, so nothing runs;
   ``--clients`` processes each submit their share of ``--submissions`` as fast as they can
   through odop's own client (journaled, resent until acknowledged), then wait for every
   acknowledgement. Reported: submit calls/s (client side), acknowledged/s (scheduler side:
   all submissions over the time until the last client has every ack), the database's
   count (must equal the submissions, all ``queued``), then the time the scheduler takes
   to cancel them all at SIGTERM (its abort path) and the states after it.
2. ``tasks`` — ``mpiexec -n --ranks`` ranks (``odop.start``), ``--tasks`` very short tasks
   (about a millisecond: append the execution id to a log) submitted in a burst, then
   ``odop.stop`` drains. The task is decorated in a module that imports numpy and mpi4py,
   as a simulation's own module would. Reported: submit calls/s, time to drain, tasks/s
   (beside Parsl's published figure, about 1,200 tasks/s at scale), states, lost
   (submitted but not done, or absent from the log) and duplicated (in the log more than
   ``attempt + 1`` times).

``--part`` runs one part only; ``--cpus 0,1`` runs everything on those CPUs (the
benchmark and all it starts inherit the mask). Tasks run at idle priority: on a machine
loaded by others the ``tasks`` part measures that machine. Usage: python
benchmarks/load.py [--json] [--part both|burst|tasks] [--cpus LIST]
[--submissions 10000] [--clients 4] [--tasks 1000] [--ranks 2]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

TASK = '''
import os

import numpy
from mpi4py import MPI

def tick(log):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (os.environ["ODOP_EXECUTION"] + "\\n").encode())
    os.close(fd)
'''

CLIENT = '''
import json, sys, time
from pathlib import Path
from odop.launch import discover
from odop.launch.client import Client
from odop.launch.journal import Journal
from odop.paths import RunPaths
from odop.protocol import MsgType, new_id, transport
from odop.tasks.spec import parse_spec

run, n, me, folder = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
paths = RunPaths(run)
transport.use_run(run)
client = Client(discover.scheduler_endpoint(paths, wait_s=30), rank=me,
                journal=Journal(run / "journal" / f"client-{me}.jnl"))
spec = parse_spec({"name": "tick", "function": folder + "/loadtask.py:tick"}, source="load")
client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
t0 = time.perf_counter()
ids = []
for i in range(n):
    ids.append(new_id())
    client.submit(ids[-1], "tick", {"log": folder + "/never.log"})
    if i % 100 == 99:
        client.pump()
t_submit = time.perf_counter() - t0
ok = client.flush(300.0)
t_ack = time.perf_counter() - t0
print(json.dumps({"ids": ids, "submit_s": t_submit, "ack_s": t_ack, "unacked": len(client.outbox),
                  "all_acked": ok, "errors": client.errors[:3]}), flush=True)
client.close()
'''

SIM = '''
import json, os, sys, time
from mpi4py import MPI
import odop
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadtask import tick
odop.task(name="tick", time="5s", cpus=1)(tick)

n, log = int(sys.argv[1]), sys.argv[2]
comm = MPI.COMM_WORLD
odop.start(run_name="tasks", config={"busy_threshold_pct": 100.0, "sample_interval_s": 0.5})
comm.Barrier()
t0 = time.perf_counter()
ids = [odop.submit("tick", log=log) for _ in range(n)]
t_submit = time.perf_counter() - t0
summary = odop.stop()
t_stop = time.perf_counter() - t0
print(json.dumps({"rank": comm.rank, "ids": ids, "submit_s": t_submit, "stop_s": t_stop,
                  "summary": summary}), flush=True)
'''


def _env(folder: Path) -> dict[str, str]:
    return dict(os.environ, ODOP_HOME=str(folder / "home"),
                PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


def _states(db_path: Path) -> dict[str, tuple[str, int]]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return {r[0]: (r[1], r[2]) for r in db.execute("SELECT id, state, attempt FROM executions")}
    finally:
        db.close()


def _count(rows: dict[str, tuple[str, int]], ids: list[str]) -> dict[str, int]:
    return dict(collections.Counter(rows[i][0] if i in rows else "absent" for i in ids))


def burst(folder: Path, submissions: int, clients: int) -> dict[str, Any]:
    """Part 1: submissions from ``clients`` processes into a scheduler with no agent."""
    run = folder / "home" / "runs" / "burst"
    env = _env(folder)
    sched = subprocess.Popen([sys.executable, "-m", "odop", "scheduler", "--run", str(run)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shares = [submissions // clients + (i < submissions % clients) for i in range(clients)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(folder / "client.py"), str(run), str(n), str(i),
                               str(folder)], env=env, stdout=subprocess.PIPE, text=True)
             for i, n in enumerate(shares)]
    outs = [json.loads(p.communicate(timeout=600)[0].splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - t0
    ids = [i for o in outs for i in o["ids"]]
    queued = _count(_states(run / "odop.db"), ids)
    t1 = time.perf_counter()
    sched.send_signal(signal.SIGTERM)
    sched.wait(600)
    abort_s = time.perf_counter() - t1
    after = _count(_states(run / "odop.db"), ids)
    return {"submissions": len(ids), "clients": clients,
            "submit_per_s": round(len(ids) / max(o["submit_s"] for o in outs)),
            "acked_per_s": round(len(ids) / max(o["ack_s"] for o in outs)),
            "all_acked": all(o["all_acked"] for o in outs), "wall_s": round(wall, 2),
            "in_db": sum(queued.values()) - queued.get("absent", 0), "states": queued,
            "abort_s": round(abort_s, 2), "states_after_abort": after,
            "lost": queued.get("absent", 0) + after.get("absent", 0)}


def tasks(folder: Path, n: int, ranks: int) -> dict[str, Any]:
    """Part 2: ``n`` very short tasks submitted by ``ranks`` MPI ranks, drained at stop."""
    mpiexec = shutil.which("mpiexec", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if mpiexec is None:
        return {"skipped": "mpiexec not found"}
    log = folder / "ran.log"
    shares = n // ranks
    argv = [mpiexec, "-n", str(ranks), sys.executable, str(folder / "sim.py"), str(shares),
            str(log)]
    t0 = time.perf_counter()
    out = subprocess.run(argv, env=_env(folder), cwd=folder, capture_output=True, text=True,
                         timeout=900, check=False)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"tasks part failed ({out.returncode}):\n{out.stderr[-3000:]}")
    parts = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    ids = [i for p in parts for i in p["ids"]]
    rows = _states(folder / "home" / "runs" / "tasks" / "odop.db")
    runs = collections.Counter(log.read_text().split() if log.exists() else [])
    drain = max(p["stop_s"] for p in parts)
    lost = [i for i in ids if rows.get(i, ("absent", 0))[0] != "done" or runs[i] == 0]
    duplicated = [i for i, k in runs.items() if k > rows.get(i, ("", 0))[1] + 1]
    return {"tasks": len(ids), "ranks": ranks,
            "submit_per_s": round(len(ids) / max(p["submit_s"] for p in parts)),
            "drain_s": round(drain, 2), "tasks_per_s": round(len(ids) / drain, 1),
            "states": _count(rows, ids), "lost": len(lost), "duplicated": len(duplicated),
            "invented": len(set(rows) - set(ids)), "wall_s": round(wall, 2),
            "summary": next((p["summary"] for p in parts if p["summary"]), None)}


PARSL_TASKS_PER_S = 1200
"""Parsl's published throughput of its high-throughput executor at scale (tasks/s)."""
PARTS = ("both", "burst", "tasks")


def run_load(folder: Path, submissions: int, clients: int, n_tasks: int,
             ranks: int, part: str = "both") -> dict[str, Any]:
    (folder / "loadtask.py").write_text(TASK)
    (folder / "client.py").write_text(CLIENT)
    (folder / "sim.py").write_text(SIM)
    result: dict[str, Any] = {"cpus": sorted(os.sched_getaffinity(0)),
                              "loadavg_1min_at_start": round(os.getloadavg()[0], 2)}
    if part in ("both", "burst"):
        result["burst"] = burst(folder, submissions, clients)
    if part in ("both", "tasks"):
        result["tasks"] = tasks(folder, n_tasks, ranks)
        result["tasks"]["parsl_published_tasks_per_s"] = PARSL_TASKS_PER_S
    result["loadavg_1min_at_end"] = round(os.getloadavg()[0], 2)
    result["lost"] = result.get("burst", {}).get("lost", 0) + \
        result.get("tasks", {}).get("lost", 0)
    result["duplicated"] = result.get("tasks", {}).get("duplicated", 0)
    return result


def _cpu_list(text: str) -> list[int]:
    try:
        cpus = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of CPU numbers") from None
    if not cpus or any(c < 0 for c in cpus):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of CPU numbers")
    return cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--part", choices=PARTS, default="both")
    parser.add_argument("--cpus", type=_cpu_list, default=None,
                        help="comma list of CPUs to run on (default: this process's)")
    args = parser.parse_args()
    if args.cpus:
        os.sched_setaffinity(0, args.cpus)
    with tempfile.TemporaryDirectory(prefix="odop-load-") as tmp:
        result = run_load(Path(tmp), args.submissions, args.clients, args.tasks, args.ranks,
                          args.part)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for part in ("burst", "tasks"):
            if part in result:
                print(part, result[part])
        print("lost", result["lost"], "duplicated", result["duplicated"])
    sys.exit(1 if result["lost"] or result["duplicated"] else 0)


if __name__ == "__main__":
    main()
