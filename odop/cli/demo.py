"""``odop demo``: a 2-D heat simulation under mpiexec with in-situ post-processing.

The simulation's ranks are bound to the first cores and leave the rest idle, and wait
10 ms a step in a marked idle phase (as a GPU code would); every snapshot it writes gets a
``reduce`` and a ``compress`` task, which odop runs on the idle cores, and on a rank's own
core while it waits, as the simulation goes on; it drains the rest at the end. Every
output is then verified against its snapshot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from odop.cli.argtypes import positive_int, seconds
from odop.cli.common import print_json
from odop.cli.progress import ProgressBar
from odop.config import load_config
from odop.errors import OdopError
from odop.paths import new_run_name, runs_folder


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the bundled heat simulation with in-situ tasks")
    p.add_argument("--ranks", type=positive_int, default=None,
                   help="MPI ranks (default: half the cores, at least 1)")
    p.add_argument("--steps", type=positive_int, default=400, help="time steps")
    p.add_argument("--every", type=positive_int, default=40, help="steps between snapshots")
    p.add_argument("--size", type=positive_int, default=512, help="grid is SIZE x SIZE")
    p.add_argument("--compute-scale", type=positive_int, default=2, help="work per step")
    p.add_argument("--io-sleep", type=seconds, default=0.01,
                   help="seconds each rank waits per step, marked as an idle phase (as a "
                        "GPU code waits for its kernels; default 0.01)")
    p.add_argument("--run", help="run name (default: a new time-stamped name)")
    p.add_argument("--config", help="odop config file (TOML)")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=run)


def find_mpiexec() -> str:
    """mpiexec next to this Python (the mpich extra in a virtualenv), else on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    found = str(local) if local.exists() else shutil.which("mpiexec")
    if not found:
        raise OdopError("mpiexec not found: install the MPI extra (pip install 'odop[mpich]') "
                        "or load your system's MPI module")
    return found


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    ranks = args.ranks or max(1, (os.cpu_count() or 2) // 2)
    name = args.run or new_run_name()
    run_dir = runs_folder(config.home_path) / name
    out = config.home_path / "demo" / name
    argv = [find_mpiexec(), "-n", str(ranks), "-bind-to", "core", sys.executable, "-m",
            "odop.demo.heat", "--mode", "odop", "--run", name, "--out", str(out), "--json",
            "--nx", str(args.size), "--ny", str(args.size), "--steps", str(args.steps),
            "--every", str(args.every), "--compute-scale", str(args.compute_scale),
            "--io-sleep", str(args.io_sleep)]
    if args.config:
        argv += ["--config", str(Path(args.config).resolve())]
    sim = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    _follow(sim, run_dir / "odop.db", expected=2 * (args.steps // args.every))
    stdout = sim.communicate()[0]
    makespan = _makespan(run_dir)
    summary = _summarise(name, run_dir, out, stdout, sim.returncode, makespan)
    _report(summary, as_json=args.json)
    ok = sim.returncode == 0 and summary["tasks_failed"] == 0 and summary["outputs_verified"]
    return 0 if ok else 1


def _follow(sim: subprocess.Popen, db: Path, expected: int) -> None:
    """Show tasks done against tasks expected while the simulation runs."""
    bar = ProgressBar("odop demo")
    while sim.poll() is None:
        counts = _counts(db)
        done = counts.get("done", 0) + counts.get("failed", 0)
        bar.update(done, max(expected, sum(counts.values())),
                   f"running {counts.get('running', 0)}  queued {counts.get('queued', 0)}")
        time.sleep(0.2)
    bar.close()


def _counts(db: Path) -> dict[str, int]:
    from odop.store.executions import RunStore

    if not db.exists():
        return {}
    try:
        store = RunStore(db, readonly=True)
    except Exception:  # created this instant; next poll
        return {}
    try:
        return store.counts()
    except Exception:
        return {}
    finally:
        store.close()


def _makespan(run_dir: Path) -> float | None:
    """The run's makespan as the report defines it (odop.report.metrics.MAKESPAN)."""
    from odop.report.metrics import run_makespan

    return run_makespan(run_dir) if (run_dir / "odop.db").exists() else None


def _summarise(name: str, run_dir: Path, out: Path, stdout: str, rc: int,
               makespan: float | None) -> dict[str, Any]:
    from odop.demo.verify import verify_outputs

    sim = _last_json(stdout)
    counts = _counts(run_dir / "odop.db")
    verified = verify_outputs(out)
    return {
        "run": name, "run_dir": str(run_dir), "outputs": str(out), "mpiexec_rc": rc,
        "ranks": sim.get("ranks"), "checksum": sim.get("checksum"),
        "tasks_submitted": sim.get("submitted", 0), "tasks_done": counts.get("done", 0),
        "tasks_failed": counts.get("failed", 0), "tasks_other": sum(
            v for k, v in counts.items() if k not in ("done", "failed")),
        "sim_wall_s": sim.get("sim_wall_s"), "makespan_s": makespan,
        "outputs_verified": verified.passed, "problems": verified.problems[:10],
    }


def _last_json(stdout: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        try:
            return dict(json.loads(line))
        except (ValueError, TypeError):
            continue
    return {}


def _report(s: dict[str, Any], *, as_json: bool) -> None:
    verdict = "verified" if s["outputs_verified"] else "NOT verified"
    print(f"run {s['run']}: {s['tasks_done']} tasks done, {s['tasks_failed']} failed; "
          f"simulation {s['sim_wall_s'] or 0:.2f} s on {s['ranks']} rank(s), "
          f"makespan {s['makespan_s'] or 0:.2f} s from the run's start; outputs {verdict}",
          file=sys.stderr)
    for problem in s["problems"]:
        print(f"  problem: {problem}", file=sys.stderr)
    print(f"details: odop status {s['run']}", file=sys.stderr)
    if as_json:
        print_json(s)
