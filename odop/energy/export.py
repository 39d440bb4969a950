"""Export tasks that cannot finish in this job as a Slurm batch script.

The tasks run one after another (``parallel=False``) or side by side on their own
cores (``parallel=True``) in one job; its duration is the sum (or the maximum) of
theirs, its deadline the earliest of theirs, its energy the sum. Each candidate site
(its own signal and sbatch directives) is planned with the deferral planner; the
site and start with the least emissions (or cost) win, and the script gets
``#SBATCH --begin=<start>``. Slurm reads --begin in the controller's local time, so
the time is written in ``tz`` (default: this machine's zone) and repeated in UTC in
a comment.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo

from odop.energy.errors import EnergyConfigError
from odop.energy.planner import Decision, plan_start
from odop.energy.signals.base import SignalProvider


@dataclass(frozen=True)
class ExportTask:
    """A task left over: ``command`` (shell words), duration (s), energy (J), deadline."""

    name: str
    command: Sequence[str]
    duration_s: float
    energy_j: float
    deadline: float = math.inf
    cpus: int = 1


@dataclass(frozen=True)
class Site:
    """Where the job may run: a ``signal`` and extra ``#SBATCH`` directives (e.g.
    '--clusters=north', '--partition=cpu')."""

    name: str
    signal: SignalProvider
    directives: Sequence[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class ExportPlan:
    """The chosen site and decision, and the script text."""

    site: str
    decision: Decision
    script: str


def _slurm_time(seconds: float) -> str:
    seconds = max(60, math.ceil(seconds / 60.0) * 60)
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    text = f"{hours:02d}:{rest // 60:02d}:00"
    return f"{days}-{text}" if days else text


def _choose(tasks: Sequence[ExportTask], sites: Sequence[Site], now: float, parallel: bool,
            horizon_s: float, kind: str) -> tuple[Site, Decision, float]:
    duration = max(t.duration_s for t in tasks) if parallel else sum(t.duration_s for t in tasks)
    energy = sum(t.energy_j for t in tasks)
    deadline = min(t.deadline for t in tasks)
    best: tuple[Site, Decision, float] | None = None
    for site in sites:
        fc = site.signal.forecast(now, horizon_s)
        if not fc.has(kind):
            continue
        dec = plan_start(fc, duration, energy, now, deadline, kind=kind)
        if best is None or dec.cost < best[1].cost:
            best = (site, dec, duration)
    if best is None:
        raise EnergyConfigError(f"export: no site has a {kind} signal")
    return best


def render_slurm_script(tasks: Sequence[ExportTask], sites: Sequence[Site], now: float, *,
                        job_name: str = "odop-export", parallel: bool = False,
                        horizon_s: float = 2 * 86400.0, kind: str = "carbon",
                        tz: tzinfo | None = None, margin: float = 1.2,
                        directives: Sequence[str] = ()) -> ExportPlan:
    """Plan and render the batch script for ``tasks`` (see the module docstring).

    ``margin`` multiplies the duration in ``--time``; ``directives`` are extra
    ``#SBATCH`` options added for every site.
    """
    if not tasks or not sites:
        raise EnergyConfigError("export: needs at least one task and one site")
    site, dec, duration = _choose(tasks, sites, now, parallel, horizon_s, kind)
    begin = datetime.fromtimestamp(dec.start, tz=tz).astimezone(tz)
    cpus = sum(t.cpus for t in tasks) if parallel else max(t.cpus for t in tasks)
    utc = datetime.fromtimestamp(dec.start, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = ["#!/bin/bash", f"#SBATCH --job-name={job_name}",
             f"#SBATCH --begin={begin.strftime('%Y-%m-%dT%H:%M:%S')}",
             f"#SBATCH --time={_slurm_time(duration * margin)}",
             "#SBATCH --nodes=1", "#SBATCH --ntasks=1", f"#SBATCH --cpus-per-task={cpus}"]
    lines += [f"#SBATCH {d}" for d in (*directives, *site.directives)]
    unit = "gCO2" if kind == "carbon" else "currency"
    lines += ["", f"# odop export: site {site.name}, begin {utc} (UTC),",
              f"# expected {dec.cost:.1f} {unit} at a mean signal of {dec.mean_signal:.1f}"
              f" ({'fits' if dec.fits else 'does NOT fit'} before the earliest deadline)",
              "set -u", ""]
    for task in tasks:
        cmd = shlex.join(task.command)
        lines += [f"# task {task.name}: {task.duration_s:.0f} s, {task.energy_j:.0f} J",
                  f"srun --ntasks=1 --cpus-per-task={task.cpus} {cmd}"
                  + (" &" if parallel else "")]
    if parallel:
        lines.append("wait")
    return ExportPlan(site.name, dec, "\n".join(lines) + "\n")
