"""The observer's command line: ``python -m odop_obs`` and ``odop obs``.

    python -m odop_obs --interval S --duration S [--pid PID ...] --out DIR
                       [--publish ENDPOINT] [--json]
    python -m odop_obs read PATH [--json] [--node NODE]

The first samples every S seconds until the duration ends (or ``--count`` samples,
or SIGINT/SIGTERM), appending each sample to ``DIR/<node>.obs.msgpack`` and
publishing it on a ZeroMQ PUB socket when asked; ``--json`` ends with one JSON
summary line (``samples``, ``out``, ...). ``read`` prints the recorded samples, one
JSON object per line with ``--json``, a short table otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from odop_obs.errors import ObsConfigError, ObsError
from odop_obs.observer import Observer, Sink
from odop_obs.power import NvmlPower, RaplSource, UtilisationModel
from odop_obs.publisher import Publisher
from odop_obs.reader import read_samples
from odop_obs.recorder import Recorder


class _Stdout:
    """Prints each sample as one JSON line."""

    def emit(self, sample: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(sample, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        pass


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not > 0 seconds")
    return value


PROG = "python -m odop_obs"
"""The command's name in usage and messages (``odop obs`` when run through odop)."""


def run_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Sample this node's CPUs, memory, "
                                "processes, GPUs and power, without scheduling anything.")
    a = p.add_argument
    a("--interval", type=_positive, default=1.0, help="seconds between samples (default 1)")
    a("--duration", type=_positive, default=None, help="stop after this many seconds")
    a("--count", type=int, default=None, help="stop after this many samples")
    a("--pid", type=int, nargs="+", action="extend", default=[],
      help="follow these processes and their children (role sim)")
    a("--task", type=int, nargs="+", action="extend", default=[],
      help="follow these task process trees (role task)")
    a("--out", "--run-dir", dest="out", default=None,
      help="append samples to OUT/<node>.obs.msgpack")
    a("--publish", "--pub", dest="publish", default=None,
      help="ZeroMQ PUB endpoint, e.g. tcp://*:5560 or ipc:///tmp/obs.sock")
    a("--json", action="store_true", help="print a JSON summary line at the end")
    a("--stdout", action="store_true", help="print every sample as a JSON line")
    a("--node", default=None, help="node name (default: host name)")
    a("--no-self", action="store_true", help="do not follow the observer itself")
    a("--no-gpu", action="store_true", help="skip NVML")
    a("--fsync", type=float, default=10.0, help="seconds between fsyncs of OUT (0: each)")
    a("--powercap", default="/sys/class/powercap", help="powercap sysfs root")
    a("--max-w-per-core", type=float, default=4.0, help="model: watts/core at 100%%")
    a("--idle-fraction", type=float, default=0.3, help="model: idle/max power")
    return p


def build(args: argparse.Namespace) -> tuple[Observer, Recorder | None, Publisher | None]:
    """The observer the arguments describe, its recorder and publisher."""
    node = args.node or os.uname().nodename
    sinks: list[Sink] = []
    publisher = Publisher(args.publish) if args.publish else None
    recorder = Recorder(args.out, node, fsync_s=args.fsync) if args.out else None
    if publisher is not None:
        print(f"odop_obs: publishing on {publisher.endpoint}", file=sys.stderr)
        sinks.append(publisher)
    if recorder is not None:
        sinks.append(recorder)
    if args.stdout or not (sinks or args.json):
        sinks.append(_Stdout())
    model = UtilisationModel(args.max_w_per_core, args.idle_fraction)
    sources = [RaplSource(args.powercap), NvmlPower(), model]
    obs = Observer.standard(sinks, gpu=not args.no_gpu, power_sources=sources, node=node,
                            interval_s=args.interval)
    procs = obs.processes
    assert procs is not None
    if not args.no_self:
        procs.watch(os.getpid(), "odop", "odop_obs")
    for pid in args.pid:
        procs.watch(pid, "sim", tree=True)
    for pid in args.task:
        procs.watch(pid, "task", tree=True)
    return obs, recorder, publisher


def run_main(argv: Sequence[str], prog: str = PROG) -> int:
    args = run_parser(prog).parse_args(argv)
    try:
        obs, recorder, publisher = build(args)
    except (ObsError, OSError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    stopped: list[int] = []

    def on_signal(num: int, _frame: object) -> None:
        stopped.append(num)
        obs.stop(timeout_s=0)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    start = time.monotonic()
    try:
        samples = obs.run(count=args.count, duration_s=args.duration)
    finally:
        obs.close()
    if args.json:
        print(json.dumps({
            "samples": samples, "node": obs.node, "interval_s": args.interval,
            "wall_s": round(time.monotonic() - start, 3),
            "stopped_by": signal.Signals(stopped[0]).name if stopped else "end",
            "out": str(recorder.path) if recorder else None,
            "publish": publisher.endpoint if publisher else None,
            "published": publisher.sent if publisher else 0, "errors": obs.errors,
        }), flush=True)
    return 0


def _row(s: dict[str, Any]) -> str:
    per_core = s.get("cpu", {}).get("per_core", [])
    busy = sum(per_core) / len(per_core) if per_core else 0.0
    power = s.get("power", {})
    watts = power.get("watts", {}).get("total", 0.0)
    used = s.get("memory", {}).get("used", 0) / 2**30
    return (f"{s['t']:.3f} {s['node']} cpu {busy:5.1f}% mem {used:7.2f} GiB "
            f"power {watts:7.1f} W ({power.get('source', '?')})")


def read_main(argv: Sequence[str], prog: str = PROG) -> int:
    p = argparse.ArgumentParser(prog=f"{prog} read", description="print recorded samples")
    p.add_argument("path", help="a record file, a samples folder or a run folder")
    p.add_argument("--json", action="store_true", help="one JSON object per sample")
    p.add_argument("--node", default=None, help="only this node's samples")
    args = p.parse_args(argv)
    try:
        for sample in read_samples(args.path, args.node):
            line = json.dumps(sample, separators=(",", ":")) if args.json else _row(sample)
            sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except ObsConfigError as exc:
        print(f"{p.prog}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Entry point: ``read ...`` reads records back; anything else (or ``run ...``) samples.
    ``prog`` names the command in usage lines (``odop obs`` from odop's command)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["read"]:
        return read_main(args[1:], prog)
    return run_main(args[1:] if args[:1] == ["run"] else args, prog)
