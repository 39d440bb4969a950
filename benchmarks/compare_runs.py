"""One run of benchmarks/compare.py: a scenario of the demo heat simulation, one way.

Ways of running the post-processing tasks (``reduce`` + ``compress`` per snapshot):

- ``none``: the simulation alone (tasks dropped): the reference for the slowdown;
- ``after``: sequentially after the simulation, in rank 0 (``--mode after``);
- ``nice``: a watcher beside ``mpiexec`` starts ``nice -n 19 python -c <tasks>`` per new
  snapshot, in the simulation's session (:mod:`compare_watch`);
- ``nice_autogroup``: the same, each process in its own session with autogroup nice 19;
- ``odop_<selection>``: odop (``--mode odop``) with ``selection = "<selection>"``; in a
  *wrapped* scenario, ``odop run`` around the unchanged simulation (``--mode none``, ranks
  unbound, no ``odop.phase`` marks) with the snapshot's tasks as one Python-script task
  (``python compare_post.py {path} OUT``, as the watchers run it) on a file trigger.

Times are Unix seconds (``time.time()``, the clock odop's run database uses).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from odop.demo.verify import verify_outputs  # noqa: E402

MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join(
    [str(Path(sys.executable).parent), os.environ.get("PATH", "")])) or "mpiexec"
"""The venv's mpiexec first: the benchmark may run without the venv activated."""
SELECTIONS = ("fifo", "priority", "shortest", "deadline")
WAYS = ("none", "after", "nice", "nice_autogroup", *(f"odop_{s}" for s in SELECTIONS))
RUN_TIMEOUT_S = 240.0
"""Longest one run may take before it counts as failed."""


class RunFailed(RuntimeError):
    """A run that did not finish: its command, exit status and the tail of its stderr."""


@dataclass(frozen=True)
class Scenario:
    """A workload: ranks (processes), per-step compute sweeps and idle seconds."""

    name: str
    ranks: int
    compute_scale: int
    io_sleep: float
    steps: int
    every: int
    about: str
    wrapped: bool = False
    """Ranks unbound (MPICH's default) and odop by ``odop run`` around an unchanged run."""

    def sim_argv(self, mode: str, out: Path, *extra: str) -> list[str]:
        bind = [] if self.wrapped else ["-bind-to", "core"]
        return [MPIEXEC, "-n", str(self.ranks), *bind, sys.executable, "-m",
                "odop.demo.heat", "--mode", mode, "--out", str(out), "--json",
                "--steps", str(self.steps), "--every", str(self.every),
                "--compute-scale", str(self.compute_scale), "--io-sleep", str(self.io_sleep),
                *extra]


def harvested(tasks: list[tuple[float, float, float]], t0: float, t1: float) -> float:
    """CPU seconds of ``(start, end, cpu_s)`` tasks done inside ``[t0, t1]``.

    A task that straddles an edge counts the fraction of its CPU time that its wall
    overlap gives (CPU assumed spread evenly over its life).
    """
    total = 0.0
    for start, end, cpu in tasks:
        overlap = min(end, t1) - max(start, t0)
        if overlap <= 0 or end <= start:
            continue
        total += cpu * min(1.0, overlap / (end - start))
    return total


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, ODOP_HOME=str(home), PYTHONPATH=str(ROOT))


def _sim(argv: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, Any]]:
    """Run the simulation; returns launch time, exit time and rank 0's JSON summary."""
    t0 = time.time()
    # own process group (same session: the plain nice watcher must share it) so that a
    # run past its time is killed with everything it started
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, process_group=0)
    try:
        stdout, stderr = p.communicate(timeout=RUN_TIMEOUT_S)  # read at call time
    except BaseException as exc:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise RunFailed(f"mpiexec ... timed out after {RUN_TIMEOUT_S} s") from exc
        raise
    t1 = time.time()
    if p.returncode != 0:
        raise RunFailed(f"mpiexec exited {p.returncode}: {stderr[-400:]}")
    for line in reversed(stdout.splitlines()):
        if line.startswith("{") and '"sim_wall_s"' in line:
            return t0, t1, json.loads(line)
    raise RunFailed(f"no JSON summary from the simulation: {stdout[-200:]}")


def _result(t0: float, end: float, sim: dict[str, Any], harvest: float,
            out: Path, **extra: Any) -> dict[str, Any]:
    verified = verify_outputs(out).passed if sim.get("submitted") else None
    wall, delay = float(sim["sim_wall_s"]), sim.get("sim_run_delay_s")
    return {"makespan_s": end - t0, "sim_wall_s": wall, "tail_s": end - t0 - wall,
            "sim_waited_pct": 100 * delay / wall if delay is not None and wall > 0 else None,
            "harvested_core_s": harvest, "verified": verified, **extra}


def run_plain(sc: Scenario, mode: str, home: Path, out: Path) -> dict[str, Any]:
    """``none`` or ``after``: nothing runs beside the simulation."""
    t0, t1, sim = _sim(sc.sim_argv(mode, out), _env(home))
    return _result(t0, t1, sim, 0.0, out)


def run_background(sc: Scenario, variant: str, home: Path, out: Path) -> dict[str, Any]:
    """The watcher baseline: tasks at nice 19 as snapshots appear (``variant`` of it)."""
    stop, report = out.with_suffix(".stop"), out.with_suffix(".watch.json")
    watcher = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "compare_watch.py"), "--out", str(out),
         "--variant", variant, "--stop", str(stop), "--report", str(report)], env=_env(home))
    try:
        t0, t1, sim = _sim(sc.sim_argv("none", out), _env(home))
    finally:
        stop.touch()
        rc = watcher.wait(timeout=RUN_TIMEOUT_S)
    tasks = json.loads(report.read_text())["tasks"]
    if rc != 0:
        raise RunFailed(f"watcher ({variant}) exited {rc}: {tasks}")
    spans = [(t["start"], t["end"], t["cpu_s"]) for t in tasks]
    end = max([t1, *(t["end"] for t in tasks)])
    sim["submitted"] = 2 * len(tasks)
    return _result(t0, end, sim, harvested(spans, t0, t1), out,
                   **_task_figures(spans, len(tasks), t1))


def _task_figures(spans: list[tuple[float, float, float]], snapshots: int,
                  sim_end: float) -> dict[str, Any]:
    """Task CPU seconds in all and per snapshot, how many ended while the simulation ran,
    and the longest of the last snapshot's tasks (seconds)."""
    last = max((s for s in spans), key=lambda s: s[0], default=None)
    return {"tasks_cpu_s": sum(s[2] for s in spans),
            "cpu_s_per_snapshot": sum(s[2] for s in spans) / snapshots if snapshots else None,
            "ended_during_sim": sum(1 for s in spans if s[1] <= sim_end),
            "last_task_s": last[1] - last[0] if last else None}


def run_odop(sc: Scenario, selection: str, home: Path, out: Path, tag: str) -> dict[str, Any]:
    """odop with ``selection``; harvest and placements from the run's database."""
    config = home / f"{selection}.toml"
    config.write_text(f'selection = "{selection}"\n')
    argv = sc.sim_argv("odop", out, "--run", tag, "--config", str(config))
    t0, t1, sim = _sim(argv, _env(home))
    db = run_db(home / "runs" / tag / "odop.db")
    spans = [(s, e, c) for s, e, c, _ in db["rows"]]
    sim_end = db["sim_end"] or t1
    return _result(t0, t1, sim, harvested(spans, t0, sim_end), out, run=tag, done=db["done"],
                   started_during_sim=sum(1 for s in spans if s[0] < sim_end),
                   drain_s=t1 - sim_end, **_task_figures(spans, len(spans) // 2, sim_end))


def run_wrapped(sc: Scenario, selection: str, home: Path, out: Path, tag: str
                ) -> dict[str, Any]:
    """``odop run`` around the unchanged simulation; its tasks a Python script per
    snapshot on a file trigger (the command the watchers run)."""
    tasks = home / f"tasks-{tag}"
    tasks.mkdir(parents=True, exist_ok=True)
    post = ROOT / "benchmarks" / "compare_post.py"
    (tasks / "post.toml").write_text(
        f'name = "post"\nprogram = {json.dumps(sys.executable)}\n'
        f'argv = [{json.dumps(str(post))}, "{{path}}", {json.dumps(str(out))}]\n'
        f'time = "60s"\n'
        f'trigger = {{ file = {json.dumps(str(out / "snapshots" / "snap_*.npy"))} }}\n')
    config = home / f"{selection}.toml"
    config.write_text(f'selection = "{selection}"\n')
    odop = [sys.executable, "-m", "odop", "run", "--run", tag, "--tasks", str(tasks),
            "--config", str(config), "--"]
    t0, t1, sim = _sim([*odop, *sc.sim_argv("none", out)], _env(home))
    db = run_db(home / "runs" / tag / "odop.db")
    spans = [(s, e, c) for s, e, c, _ in db["rows"]]
    sim_end = db["sim_end"] or t1
    end = max([sim_end, *(e for _, e, _ in spans)])  # as the watchers': the last task done
    sim["submitted"] = 2 * len(spans)
    return _result(t0, end, sim, harvested(spans, t0, sim_end), out, run=tag, done=db["done"],
                   started_during_sim=sum(1 for s in spans if s[0] < sim_end),
                   drain_s=end - sim_end, odop_run_exit_s=t1 - t0,
                   **_task_figures(spans, len(spans), sim_end))


def run_db(path: Path) -> dict[str, Any]:
    """Finished executions (start, end, cpu_s, cores), the done count and meta sim_end."""
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        rows = con.execute("SELECT started_at, ended_at, cpu_s, cores, state FROM executions"
                           ).fetchall()
    finally:
        con.close()
    sim_end = json.loads(meta["sim_end"]) if "sim_end" in meta else None
    done = [r for r in rows if r[4] == "done"]
    return {"sim_end": sim_end, "done": len(done),
            "rows": [(s, e, c or 0.0, cores) for s, e, c, cores, _ in rows
                     if s is not None and e is not None]}


def run_way(sc: Scenario, way: str, home: Path, tag: str) -> dict[str, Any]:
    """One run of ``way`` on scenario ``sc``; its output folder is removed afterwards."""
    out = home / "out" / tag
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if way in ("none", "after"):
            return run_plain(sc, way, home, out)
        if way in ("nice", "nice_autogroup"):
            return run_background(sc, "nice" if way == "nice" else "autogroup", home, out)
        if way.startswith("odop_") and way[5:] in SELECTIONS and sc.wrapped:
            return run_wrapped(sc, way[5:], home, out, tag)
        if way.startswith("odop_") and way[5:] in SELECTIONS:
            return run_odop(sc, way[5:], home, out, tag)
        raise ValueError(f"way {way!r} is not known; allowed: {', '.join(WAYS)}")
    finally:
        shutil.rmtree(out, ignore_errors=True)
