"""``odop export RUN``: the queued tasks that cannot finish in this allocation, as a Slurm job.

An execution still queued whose expected duration (profile estimate, else the declared
``time``) does not fit between now and the allocation's end is written into one batch
script (odop.energy.export) whose ``--begin`` is the cleanest window before the
earliest of their deadlines, on the cleanest of the candidate sites. The allocation end
is ``--alloc-end``, else the run's ``alloc_end`` meta value, else $SLURM_JOB_END_TIME,
else now (every queued execution is exported). Each task runs without odop: a Python
task through a one-line runner that calls its function with its arguments, an
executable through its filled argv.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from datetime import timezone
from pathlib import Path
from typing import Any

from odop.cli.common import add_json, add_run, print_json, run_paths
from odop.config import load_config
from odop.energy.errors import EnergyConfigError
from odop.energy.export import ExportTask, Site, render_slurm_script
from odop.energy.settings import EnergySettings, make_provider, parse_settings
from odop.energy.signals._timefmt import parse_time
from odop.engine.engine import command_line
from odop.errors import OdopError
from odop.store.executions import RunStore
from odop.store.profiles import ProfileStore
from odop.store.states import ExecState

RUNNER = ("import json, sys; from odop.tasks.target import load_callable; "
          "load_callable(sys.argv[1])(**json.loads(sys.argv[2]))")
"""``python -c`` program of a Python task: target and JSON arguments follow as argv (no
quoting inside the code, and JSON's true/null survive)."""
DEFAULT_DURATION_S = 3600.0
"""Expected duration (s) of a task with neither history nor a declared ``time``."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="write a Slurm script for queued tasks that cannot "
                                      "finish before the allocation ends")
    add_run(p)
    p.add_argument("--sites", help="TOML/JSON file of candidate sites ([[site]] name, "
                                   "directives, [site.energy] signal); default: this one")
    p.add_argument("--out", help="script path ('-': stdout; default: RUN/export.sbatch)")
    p.add_argument("--alloc-end", help="allocation end (unix s or ISO 8601)")
    p.add_argument("--now", help="plan as of this time (unix s or ISO 8601; default: now)")
    p.add_argument("--parallel", action="store_true", help="run the tasks side by side")
    p.add_argument("--python", default="python", help="interpreter for Python tasks")
    p.add_argument("--job-name", default="odop-export",
                   help="Slurm job name of the script (default: odop-export)")
    p.add_argument("--utc", action="store_true", help="write --begin in UTC (default: local)")
    add_json(p)
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Leftover:
    """A queued execution that does not fit: its export task and why."""

    execution: str
    task: ExportTask
    estimate_source: str


def task_command(spec: dict[str, Any], args: dict[str, Any], python: str = "python"
                 ) -> list[str]:
    """Shell words that run one execution without odop."""
    if spec.get("kind", "python") == "python":
        try:
            text = json.dumps(args)
        except (TypeError, ValueError) as exc:
            raise OdopError(f"task {spec.get('name')!r}: arguments {args!r} are not JSON: "
                            f"{exc}") from None
        return [python, "-c", RUNNER, str(spec["target"]), text]
    try:
        return command_line(spec, args)
    except (KeyError, IndexError, ValueError) as exc:
        raise OdopError(f"task {spec.get('name')!r}: argv {spec.get('argv')} cannot be filled "
                        f"from arguments {sorted(args)}: {exc!r}") from None


def _estimates(home: Path, settings: EnergySettings, specs: dict[str, dict[str, Any]]
               ) -> dict[str, tuple[float, float, str]]:
    """task -> (duration s, energy J, source) from profiles.db, else the declaration."""
    store = ProfileStore(home / "profiles.db") if (home / "profiles.db").exists() else None
    out: dict[str, tuple[float, float, str]] = {}
    try:
        for name, spec in specs.items():
            est = store.estimate(name) if store else None
            duration, source = est.duration_s if est else None, est.source if est else "declared"
            if duration is None:
                duration, source = spec.get("time_s"), "declared"
            if duration is None:
                duration, source = DEFAULT_DURATION_S, "default"
            joules = [h["energy_j"] for h in store.history(name)
                      if h["energy_j"] is not None] if store else []
            energy = sum(joules) / len(joules) if joules else (
                settings.watts_per_core * float(spec.get("cpus_min") or 1.0) * duration)
            out[name] = (float(duration), float(energy), source)
    finally:
        if store:
            store.close()
    return out


def leftovers(rows: list[dict[str, Any]], specs: dict[str, dict[str, Any]],
              estimates: dict[str, tuple[float, float, str]], now: float, alloc_end: float,
              python: str = "python") -> list[Leftover]:
    """The queued executions that cannot end by ``alloc_end`` if started ``now``."""
    out = []
    for row in rows:
        spec = specs.get(row["task"])
        if spec is None:
            raise OdopError(f"execution {row['id']}: task {row['task']!r} has no stored spec")
        duration, energy, source = estimates[row["task"]]
        if now + duration <= alloc_end:
            continue
        deadline = math.inf if row["deadline"] is None else float(row["deadline"])
        cpus = max(1, math.ceil(float(spec.get("cpus_min") or 1.0) - 1e-9))
        command = task_command(spec, row["args"], python)
        out.append(Leftover(row["id"], ExportTask(f"{row['task']}-{row['id'][:8]}", command,
                                                  duration, energy, deadline, cpus), source))
    return out


def load_sites(path: str | None, default: EnergySettings, now: float) -> list[Site]:
    """Sites from a TOML/JSON file ([[site]] / {"sites": [...]}), or this site alone."""
    if path is None:
        return [Site("here", _signal(default, now))]
    file = Path(path)
    try:
        text = file.read_text()
        if file.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import tomllib
            data = tomllib.loads(text)
    except (OSError, ValueError) as exc:
        raise EnergyConfigError(f"sites file {file}: {exc}") from exc
    entries = data.get("site", data.get("sites")) if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise EnergyConfigError(f"sites file {file}: needs a non-empty [[site]] list")
    return [_site(e, i, file.parent, now) for i, e in enumerate(entries)]


def _site(entry: Any, index: int, folder: Path, now: float) -> Site:
    if not isinstance(entry, dict) or "name" not in entry:
        raise EnergyConfigError(f"site #{index + 1}: needs 'name', optional 'directives' "
                                f"(list of strings) and 'energy' (a table); got {entry!r}")
    section = dict(entry.get("energy") or {})
    if section.get("file") and not Path(section["file"]).is_absolute():
        section["file"] = str(folder / section["file"])
    directives = entry.get("directives") or []
    if not isinstance(directives, list) or not all(isinstance(d, str) for d in directives):
        raise EnergyConfigError(f"site {entry['name']!r}: directives must be a list of strings")
    return Site(str(entry["name"]), _signal(parse_settings(section), now), tuple(directives))


def _signal(settings: EnergySettings, now: float) -> Any:
    provider = make_provider(settings, now=now)
    refresh = getattr(provider, "refresh", None)
    if refresh is not None:
        refresh()  # one synchronous fetch; on failure the static fallback answers
    return provider


def _alloc_end(args: argparse.Namespace, meta: dict[str, Any], now: float) -> float:
    env = os.environ.get("SLURM_JOB_END_TIME")
    for value in (args.alloc_end, meta.get("alloc_end"), env):
        if value not in (None, ""):
            return float(parse_time(value, "allocation end"))
    return now


def run(args: argparse.Namespace) -> int:
    config = load_config(getattr(args, "config", None))
    settings = parse_settings(config.extra.get("energy"))
    paths = run_paths(args)
    now = time.time() if args.now is None else parse_time(args.now, "odop export --now")
    store = RunStore(paths.db, readonly=True)
    try:
        specs, rows, meta = store.tasks(), store.in_states(ExecState.QUEUED), store.meta()
    finally:
        store.close()
    alloc_end = _alloc_end(args, meta, now)
    left = leftovers(rows, specs, _estimates(config.home_path, settings, specs), now,
                     alloc_end, args.python)
    summary: dict[str, Any] = {"run": paths.name, "alloc_end": alloc_end, "queued": len(rows),
                               "exported": [{"execution": x.execution, "name": x.task.name,
                                             "duration_s": x.task.duration_s,
                                             "energy_j": x.task.energy_j,
                                             "estimate": x.estimate_source} for x in left]}
    if left:
        plan = render_slurm_script([x.task for x in left], load_sites(args.sites, settings, now),
                                   now, job_name=args.job_name, parallel=args.parallel,
                                   horizon_s=settings.horizon_s, kind=settings.signal_kind,
                                   tz=timezone.utc if args.utc else None)
        out = _write(plan.script, args.out, paths.root / "export.sbatch")
        _mark_exported(paths.db, [x.execution for x in left])
        d = plan.decision
        summary.update(script=out, site=plan.site, begin=d.start, fits=d.fits, cost=d.cost,
                       mean_signal=d.mean_signal, kind=settings.signal_kind)
    _report(summary, args.json)
    return 0


def _mark_exported(db: Path, executions: list[str]) -> None:
    """Record in the run that these queued executions went to a job script: the run's
    account counts them ``exported``, not left behind."""
    store = RunStore(db)
    try:
        store.set_meta("exported", sorted(set(store.meta().get("exported") or ()) |
                                          set(executions)))
    finally:
        store.close()


def _write(script: str, out: str | None, default: Path) -> str:
    if out == "-":
        sys.stdout.write(script)
        return "-"
    path = Path(out) if out else default
    path.write_text(script)
    path.chmod(0o700)
    return str(path)


def _report(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    if not summary["exported"]:
        print(f"nothing to export: the {summary['queued']} queued execution(s) fit before "
              f"the allocation ends")
        return
    begin = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(summary["begin"]))
    unit = "gCO2" if summary["kind"] == "carbon" else "currency"
    print(f"{len(summary['exported'])} of {summary['queued']} queued execution(s) exported to "
          f"{summary['script']}: site {summary['site']}, begin {begin}, expected "
          f"{summary['cost']:.1f} {unit}" + ("" if summary["fits"] else
                                              " (does NOT fit before the earliest deadline)"),
          file=sys.stderr if summary["script"] == "-" else sys.stdout)
