"""Soak: a long run with steady submissions; is the memory of odop's processes flat?

A simulation process (``odop.start``, one submission every ``--period`` seconds of a short
task, ``odop.stop``) runs for ``--minutes``; every ``--every`` seconds this script reads the
memory of each odop process under it: the rank itself (it holds the client and its
journal), the scheduler, the agent (engine + observer) and the agent's fork server. Two
figures per process: the resident set (RSS) and its anonymous part (RSS less psutil's
``shared``, i.e. ``RssAnon`` of /proc/PID/status: heap, stacks, private mappings; what a
leak grows). The rest of RSS is
file pages (shared library code and data faulted in as code paths are first used: shared,
clean, bounded by the files' size) and shared memory. After a warm-up (the first fifth of
the run, at least 60 s) it fits each figure against time (numpy least squares) per
process: the slope in bytes/minute, and as a percentage of the mean per 10 minutes, and
the same over the last half of those samples alone (to tell a plateau from a leak;
reported, never part of the verdict). A process is *flat* when |slope| of its anonymous
memory over the whole fit < 1 % of its RSS per 10 minutes; the RSS slope is reported
beside it. The run passes when every process is flat and the run's database holds every
submission, all done.
Usage: python benchmarks/soak.py [--json] [--minutes 10] [--every 5] [--period 0.5]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
FLAT_PCT_PER_10MIN = 1.0
"""Largest |RSS slope| counted as flat: percent of the mean RSS per 10 minutes."""
ROLES = ("rank", "scheduler", "agent", "forkserver")
"""Every odop process the soak must measure."""

SIM = '''
import json, os, sys, time
import odop

@odop.task(name="tick", time="5s", cpus=1)
def tick(n):
    return sum(i * i for i in range(20000 + n % 7))

if __name__ == "__main__":
    seconds, period, ids_path = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    odop.start(run_name="soak")
    end = time.monotonic() + seconds
    n = 0
    with open(ids_path, "a") as ids:
        while time.monotonic() < end:
            ids.write(odop.submit("tick", n=n) + "\\n")
            ids.flush()
            n += 1
            time.sleep(period)
    print(json.dumps({"submitted": n, "summary": odop.stop(timeout_s=120)}), flush=True)
'''


def role_of(proc: psutil.Process, sim_pid: int) -> str | None:
    """The odop role of a process under the simulation (None for tasks and others)."""
    if proc.pid == sim_pid:
        return "rank"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return None
    for key, role in (("odop scheduler", "scheduler"), ("odop agent", "agent"),
                      ("odop.engine.forkserver", "forkserver")):
        if key in cmd:
            return role if role != "forkserver" or _parent_is_agent(proc) else None
    return None


def _parent_is_agent(proc: psutil.Process) -> bool:
    """The fork server itself, not a task it forked (same command line)."""
    try:
        parent = proc.parent()
        return parent is not None and "odop agent" in " ".join(parent.cmdline())
    except psutil.Error:
        return False


Sample = tuple[str, int, int, int, float]
"""role, pid, RSS bytes, anonymous bytes, CPU seconds."""


def sample(sim: psutil.Process) -> list[Sample]:
    """A :data:`Sample` of every live odop process under ``sim`` now."""
    out: list[Sample] = []
    try:
        procs = [sim, *sim.children(recursive=True)]
    except psutil.Error:
        return out
    for proc in procs:
        role = role_of(proc, sim.pid)
        if role is None:
            continue
        try:
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                cpu, mem = proc.cpu_times(), proc.memory_info()
                # RSS less its file-backed and shared pages: RssAnon, from the same read
                out.append((role, proc.pid, mem.rss, mem.rss - mem.shared,
                            cpu.user + cpu.system))
        except psutil.Error:
            continue
    return out


Point = tuple[float, int, int, float]
"""monotonic time, RSS bytes, anonymous bytes, CPU seconds."""


def slopes(t_min: np.ndarray, y: np.ndarray, scale: float) -> tuple[float, float, float]:
    """Least-squares slope of ``y`` (bytes/minute), that slope as a percentage of ``scale``
    per 10 minutes, and the slope over the last half of the samples alone (bytes/minute)."""
    slope = float(np.polyfit(t_min, y, 1)[0])
    half = len(t_min) // 2
    late = float(np.polyfit(t_min[half:], y[half:], 1)[0])
    return slope, slope * 10 / scale * 100, late


def fit(points: list[Point], t0: float, warmup_s: float) -> dict[str, Any]:
    """RSS and anonymous memory against time after the warm-up: slopes, whether the process
    is flat (by its anonymous memory), and its mean CPU use (percent of one core)."""
    kept = [p for p in points if p[0] - t0 >= warmup_s]
    if len(kept) < 6:
        return {"samples": len(kept), "flat": None}
    t = np.array([p[0] - t0 for p in kept]) / 60.0
    rss = np.array([p[1] for p in kept], dtype=float)
    anon = np.array([p[2] for p in kept], dtype=float)
    rss_slope, rss_pct, rss_late = slopes(t, rss, rss.mean())
    anon_slope, anon_pct, anon_late = slopes(t, anon, rss.mean())
    cpu = (points[-1][3] - points[0][3]) / max(1e-9, points[-1][0] - points[0][0]) * 100
    mb = 2**20
    return {"samples": len(kept), "cpu_pct": round(cpu, 2),
            "rss_mb_first": round(points[0][1] / mb, 1),
            "rss_mb_after_warmup": round(float(rss[0]) / mb, 1),
            "rss_mb_last": round(float(rss[-1]) / mb, 1),
            "anon_mb_after_warmup": round(float(anon[0]) / mb, 1),
            "anon_mb_last": round(float(anon[-1]) / mb, 1),
            "slope_bytes_per_min": round(rss_slope), "slope_pct_per_10min": round(rss_pct, 3),
            "slope_bytes_per_min_last_half": round(rss_late),
            "anon_slope_bytes_per_min": round(anon_slope),
            "anon_slope_pct_per_10min": round(anon_pct, 3),
            "anon_slope_bytes_per_min_last_half": round(anon_late),
            "flat": bool(abs(anon_pct) < FLAT_PCT_PER_10MIN)}


def audit(run_dir: Path, ids_path: Path) -> dict[str, Any]:
    ids = set(ids_path.read_text().split())
    db = sqlite3.connect(f"file:{run_dir}/odop.db?mode=ro", uri=True)
    states = dict(db.execute("SELECT id, state FROM executions").fetchall())
    reasons = db.execute("SELECT reason, COUNT(*) FROM executions WHERE state != 'done' "
                         "GROUP BY reason").fetchall()
    db.close()
    counts: dict[str, int] = {}
    for state in states.values():
        counts[state] = counts.get(state, 0) + 1
    not_done = sum(states.get(i) != "done" for i in ids)
    return {"submitted": len(ids), "states": counts, "lost": not_done,
            "not_done_reasons": {str(r): n for r, n in reasons}}


def soak(minutes: float, every_s: float, period_s: float, folder: Path) -> dict[str, Any]:
    env = dict(os.environ, ODOP_HOME=str(folder / "home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    (folder / "sim.py").write_text(SIM)
    ids = folder / "ids.txt"
    proc = subprocess.Popen([sys.executable, "sim.py", str(minutes * 60), str(period_s), str(ids)],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    sim = psutil.Process(proc.pid)
    series: dict[tuple[str, int], list[Point]] = {}
    start = time.monotonic()
    end = start + minutes * 60 - every_s
    while time.monotonic() < end and proc.poll() is None:
        now = time.monotonic()
        for role, pid, rss, anon, cpu in sample(sim):
            series.setdefault((role, pid), []).append((now, rss, anon, cpu))
        time.sleep(max(0.0, every_s - (time.monotonic() - now)))
    out, err = proc.communicate(timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"simulation failed ({proc.returncode}):\n{err[-3000:]}")
    warmup = max(60.0, minutes * 60 / 5)
    result = {}
    for role in sorted({r for r, _ in series}):
        pids = {pid: pts for (r, pid), pts in series.items() if r == role}
        main = max(pids, key=lambda pid: len(pids[pid]))  # the longest-lived one
        result[role] = {**fit(pids[main], start, warmup), "pids": len(pids)}
    return {"minutes": minutes, "every_s": every_s, "period_s": period_s, "warmup_s": warmup,
            "processes": result, "sim": json.loads(out.splitlines()[-1]),
            **audit(folder / "home" / "runs" / "soak", ids),
            "flat_threshold_pct_per_10min": FLAT_PCT_PER_10MIN}


def unmeasured(processes: dict[str, dict[str, Any]]) -> list[str]:
    """The roles without a flat/not-flat verdict: never seen, or too few samples after the
    warm-up. The run counts as flat only when this is empty and every process is flat."""
    return [role for role in ROLES if processes.get(role, {}).get("flat") is None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--period", type=float, default=0.5, help="seconds between submits")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="odop-soak-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        result = soak(args.minutes, args.every, args.period, folder)
    result["unmeasured"] = unmeasured(result["processes"])
    flats = [p.get("flat") for p in result["processes"].values()]
    result["all_flat"] = not result["unmeasured"] and all(f is True for f in flats)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for role, info in result["processes"].items():
            print(f"{role:11s} {info}")
        print({k: v for k, v in result.items() if k != "processes"})
    if not result["all_flat"] or result["lost"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
