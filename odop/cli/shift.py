"""``odop shift --within 24h [--runtime 2h] -- CMD``: run one command in the cleanest (or
cheapest) window that fits before a deadline.

The window comes from the scheduler's own deferral planner
(``odop.energy.deferral.DeferralPlanner``, the signal averaged over the whole run)
on a provider built from the same ``[energy]`` settings the scheduler reads
(``--config``), the options overriding them. While it waits it shows a countdown on
stderr, re-reads the forecast every ``check_s`` and re-plans; then it runs the command
and reports its grams (or cost) against running it at once. A remote provider that
cannot be reached means running at once, said plainly. Exit status: the command's
(128 + N for a signal N), 2 for bad input, 130 when interrupted before it started.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from odop.cli.progress import ProgressBar
from odop.config import load_config
from odop.energy.deferral import DeferralPlanner
from odop.energy.errors import EnergyConfigError
from odop.energy.forecast import KINDS, Forecast
from odop.energy.planner import unit_divisor
from odop.energy.settings import EnergySettings, make_provider, parse_settings
from odop.energy.signals.base import SignalProvider
from odop.energy.signals.remote import RemoteSignal
from odop.errors import OdopError
from odop.plugins import GRID_PROVIDERS
from odop.tasks.units import DURATION_FORMS, parse_duration

ZONE_KEYS = ("zone", "region", "domain")
"""The [energy] keys ``--zone`` sets: the one a provider requires (its zone, region or
bidding zone)."""
DEFAULT_RUNTIME_S = 3600.0
KEY = "command"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("shift", help="run a command in the cleanest (or cheapest) window "
                                     "before a deadline")
    a = p.add_argument
    a("--within", required=True, metavar="DURATION",
      help="the command must end within this long from now, e.g. 24h")
    a("--runtime", metavar="DURATION", default=None,
      help="how long the command runs (default 1h), e.g. 2h or 90min")
    a("--by", choices=KINDS, default=None,
      help="minimise grams of CO2 (carbon) or cost (price); default: the provider's kind")
    a("--provider", choices=GRID_PROVIDERS.names(), default=None,
      help="grid signal provider (default: the config's [energy] provider, else static)")
    a("--zone", default=None, help="grid zone: an Electricity Maps zone (DE), a WattTime "
                                   "region (CAISO_NORTH) or an ENTSO-E bidding zone (EIC)")
    a("--file", default=None, help="replay provider: CSV/JSON series of t,carbon and/or price")
    a("--watts", type=float, default=None,
      help="the command's mean power in W (default: [energy] watts_per_core x its cores)")
    a("--config", help="odop config file (TOML) whose [energy] section gives the rest")
    a("--json", action="store_true", help="print the summary as one JSON line on stdout")
    a("program", nargs=argparse.REMAINDER, help="-- the command to run")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Request:
    """What to run when: ``asked_at``, ``end_by`` (unix s), ``runtime_s``, the signal
    ``kind``, the command's ``watts`` and how they were found (``power``)."""

    command: list[str]
    asked_at: float
    end_by: float
    runtime_s: float
    kind: str
    watts: float
    power: str


def run(args: argparse.Namespace) -> int:
    now = time.time()
    settings = _settings(args)
    req = _request(args, settings, now)
    provider, problem = _connect(settings, now)
    try:
        first = provider.forecast(now, req.end_by - now)
        _check_kind(first, req.kind, settings)
        planner = DeferralPlanner(req.kind)
        planner.set_forecast(first)
        planner.add(KEY, cores=1, duration_s=req.runtime_s, energy_j=req.watts * req.runtime_s,
                    earliest=now, end_by=req.end_by)
        _say_plan(req, first, planner.start_of(KEY, now) or now, problem)
        last = _wait(req, planner, provider, settings.check_s)
    finally:
        provider.stop()
    rc, started, ended = _execute(req.command)
    summary = _summary(req, first, last, started, ended, rc, problem)
    _say_done(summary)
    if args.json:
        print(json.dumps(summary), flush=True)
    return rc


def _settings(args: argparse.Namespace) -> EnergySettings:
    """The config's [energy] section with the options laid over it."""
    section = dict(load_config(args.config).extra.get("energy") or {})
    for key, value in (("provider", args.provider), ("file", args.file)):
        if value is not None:
            section[key] = value
    if args.zone is not None:
        provider = str(section.get("provider", "static"))
        keys = [k for k in GRID_PROVIDERS.get(provider).required if k in ZONE_KEYS]
        if not keys:
            zoned = [n for n, c in GRID_PROVIDERS.items() if set(c.required) & set(ZONE_KEYS)]
            raise EnergyConfigError(f"--zone {args.zone!r}: provider {provider!r} has no zones; "
                                    f"allowed with --provider {', '.join(zoned)}")
        section[keys[0]] = args.zone
    return parse_settings(section)


def _duration(option: str, text: str) -> float:
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise OdopError(f"{option} {text!r}: {exc}") from None
    if value <= 0:
        raise OdopError(f"{option} {text!r} must be longer than 0; accepted: {DURATION_FORMS}")
    return value


def _request(args: argparse.Namespace, settings: EnergySettings, now: float) -> Request:
    """The validated request: a window the runtime fits in, a command that exists."""
    within = _duration("--within", args.within)
    runtime = DEFAULT_RUNTIME_S if args.runtime is None else _duration("--runtime", args.runtime)
    if runtime > within:
        given = "1h (the default)" if args.runtime is None else args.runtime
        raise OdopError(f"--runtime {given} is longer than --within {args.within}: the "
                        f"command could not end in time; allowed: a runtime up to "
                        f"{args.within}")
    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not command:
        raise OdopError("odop shift needs a command after '--', e.g. "
                        "odop shift --within 24h --runtime 2h -- python train.py")
    if shutil.which(command[0]) is None:
        raise OdopError(f"command {command[0]!r} not found (not an executable file, nor on "
                        "PATH)")
    if args.watts is not None and not (math.isfinite(args.watts) and args.watts >= 0):
        raise OdopError(f"--watts {args.watts} must be a number of watts >= 0")
    cores = len(os.sched_getaffinity(0))
    watts, power = ((args.watts, "--watts") if args.watts is not None else
                    (settings.watts_per_core * cores,
                     f"estimate: {settings.watts_per_core:g} W/core x {cores} cores"))
    return Request(command, now, now + within, runtime, args.by or settings.signal_kind,
                   watts, power)


def _connect(settings: EnergySettings, now: float) -> tuple[SignalProvider, str | None]:
    """The provider, fetched once now; the reason when it cannot be reached."""
    provider = make_provider(settings, now=now)
    if isinstance(provider, RemoteSignal):
        if not provider.refresh():
            return provider, f"provider {settings.provider} unreachable: " \
                             f"{provider.status().last_error}"
        provider.start()
    return provider, None


def _check_kind(forecast: Forecast, kind: str, settings: EnergySettings) -> None:
    if not forecast.has(kind):
        have = [k for k in KINDS if forecast.has(k)]
        raise EnergyConfigError(
            f"--by {kind}: provider {settings.provider!r} ({forecast.source}) gives "
            f"{' and '.join(have)} only; allowed: --by {' or --by '.join(have)}")


def _wait(req: Request, planner: DeferralPlanner, provider: SignalProvider,
          check_s: float) -> Forecast:
    """Wait for the planned start with a countdown, re-planning on each new forecast
    (every ``check_s``); returns the forecast read last."""
    bar = ProgressBar("odop shift: waiting", sys.stderr)
    begun = time.time()
    fc = planner.forecast
    assert fc is not None
    checked = begun
    try:
        while True:
            now = time.time()
            if now - checked >= check_s:
                fc, checked = _reread(planner, provider, req, now), now
            start = planner.start_of(KEY, now) or now
            if start <= now:
                return fc
            bar.update(int(now - begun), math.ceil(start - begun),
                       f"starts in {_span(start - now)} at {_clock(start)}")
            time.sleep(min(1.0, start - now))
    finally:
        bar.close()


def _reread(planner: DeferralPlanner, provider: SignalProvider, req: Request,
            now: float) -> Forecast:
    """A fresh forecast: re-plan with it when its values differ; say a moved start."""
    fc = provider.forecast(now, max(req.end_by - now, 1.0))
    old = planner.forecast
    if old is not None and _same(old, fc, req.kind):
        return old
    before = planner.start_of(KEY, now)
    planner.set_forecast(fc)
    after = planner.start_of(KEY, now)
    if before is not None and after is not None and abs(after - before) >= 1:
        print(f"odop shift: new forecast from {fc.source}: start moved to {_clock(after)}",
              file=sys.stderr)
    return fc


def _same(a: Forecast, b: Forecast, kind: str) -> bool:
    return (a.resolution_s == b.resolution_s and a.start.size == b.start.size
            and bool((a.start == b.start).all())
            and bool((a.values(kind) == b.values(kind)).all()))


def _execute(command: list[str]) -> tuple[int, float, float]:
    """Run the command; SIGTERM is passed on, Ctrl-C reaches it from the terminal.
    Returns (exit status, started, ended) in unix s."""
    started = time.time()
    proc = subprocess.Popen(command)
    old = {signal.SIGTERM: signal.signal(signal.SIGTERM, lambda n, _f: proc.send_signal(n)),
           signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    try:
        rc = proc.wait()
    finally:
        for num, handler in old.items():
            signal.signal(num, handler)
    return (rc if rc >= 0 else 128 - rc), started, time.time()


def _cost(req: Request, fc: Forecast, t0: float, seconds: float) -> tuple[float, float]:
    """(mean signal, grams or currency) of running ``seconds`` from ``t0`` at the
    command's watts."""
    mean = fc.mean_over(t0, t0 + seconds, req.kind)
    return mean, req.watts * seconds * mean / unit_divisor(req.kind)


def _saving(cost: float, at_once: float) -> float:
    return round(100.0 * (at_once - cost) / at_once, 2) if at_once > 0 else 0.0


def _summary(req: Request, first: Forecast, last: Forecast, started: float, ended: float,
             rc: int, problem: str | None) -> dict[str, Any]:
    """What was planned and what it cost against running at once (s, W, g or currency)."""
    wall = ended - started
    mean_now, cost_now = _cost(req, first, req.asked_at, req.runtime_s)
    mean_plan, cost_plan = _cost(req, last, started, req.runtime_s)
    mean_run, cost_run = _cost(req, last, started, wall)
    mean_once, cost_once = _cost(req, first, req.asked_at, wall)
    return {
        "command": req.command, "exit_code": rc, "by": req.kind, "unit": _unit(req, first),
        "signal_source": last.source, "fallback": problem, "asked_at": req.asked_at,
        "deadline": req.end_by, "runtime_s": req.runtime_s, "started_at": started,
        "ended_at": ended, "waited_s": round(started - req.asked_at, 3),
        "wall_s": round(wall, 3), "on_time": ended <= req.end_by, "watts": req.watts,
        "power": req.power,
        "expected": {"mean_signal": mean_plan, "mean_at_once": mean_now, "cost": cost_plan,
                     "cost_at_once": cost_now, "saving_pct": _saving(cost_plan, cost_now)},
        "actual": {"mean_signal": mean_run, "mean_at_once": mean_once, "cost": cost_run,
                   "cost_at_once": cost_once, "saved": cost_once - cost_run,
                   "saving_pct": _saving(cost_run, cost_once)},
    }


def _unit(req: Request, fc: Forecast) -> str:
    return "gCO2" if req.kind == "carbon" else fc.currency


def _signal_unit(req: Request, fc: Forecast) -> str:
    return "g/kWh" if req.kind == "carbon" else f"{fc.currency}/MWh"


def _say_plan(req: Request, fc: Forecast, start: float, problem: str | None) -> None:
    if problem is not None:
        print(f"odop shift: {problem}; running at once", file=sys.stderr)
        return
    unit = _signal_unit(req, fc)
    mean_now, cost_now = _cost(req, fc, req.asked_at, req.runtime_s)
    mean, cost = _cost(req, fc, start, req.runtime_s)
    if start <= req.asked_at + 0.5:
        print(f"odop shift: no cleaner window for a {_span(req.runtime_s)} run before "
              f"{_clock(req.end_by)} ({fc.source}: {mean_now:.4g} {unit} now): running at "
              "once", file=sys.stderr)
        return
    print(f"odop shift: the cleanest {_span(req.runtime_s)} window before "
          f"{_clock(req.end_by)} starts at {_clock(start)} (in {_span(start - req.asked_at)}): "
          f"{mean:.4g} {unit} averaged over the run against {mean_now:.4g} now "
          f"({fc.source}), {_saving(cost, cost_now):.1f} % less", file=sys.stderr)


def _say_done(s: dict[str, Any]) -> None:
    act = s["actual"]
    print(f"odop shift: exit {s['exit_code']} after {_span(s['wall_s'])}, waited "
          f"{_span(s['waited_s'])}: {act['cost']:.4g} {s['unit']} against "
          f"{act['cost_at_once']:.4g} at once ({act['saving_pct']:.1f} % less; power "
          f"{s['watts']:g} W, {s['power']}; signal {s['signal_source']})", file=sys.stderr)


def _span(seconds: float) -> str:
    """``1h 02m``, ``3m 05s`` or ``4s``."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s % 60:02d}s" if m else f"{s}s"


def _clock(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
