"""``python -m odop_obs``: monitor this node without scheduling.

Samples every ``--interval`` seconds; publishes on ``--pub``, appends to
``<run-dir>/obs/<node>.jsonl`` and/or prints JSON lines (``--stdout``, the default
when neither of the others is given). Ends on SIGINT/SIGTERM or after ``--count``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from odop_obs.errors import ObsError
from odop_obs.observer import Observer, Sink
from odop_obs.power import NvmlPower, RaplSource, UtilisationModel
from odop_obs.publisher import Publisher
from odop_obs.recorder import Recorder


class _Stdout:
    """Prints each sample as one JSON line."""

    def emit(self, sample: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(sample, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def close(self) -> None:
        pass


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m odop_obs", description=__doc__.split("\n")[0])
    p.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    p.add_argument("--count", type=int, default=None, help="stop after this many samples")
    p.add_argument("--node", default=None, help="node name (default: host name)")
    p.add_argument("--run-dir", default=None, help="append samples to RUN_DIR/obs/NODE.jsonl")
    p.add_argument("--pub", default=None, help="ZeroMQ PUB endpoint, e.g. tcp://*:5560")
    p.add_argument("--stdout", action="store_true", help="print samples as JSON lines")
    p.add_argument("--pid", type=int, action="append", default=[], help="watch a rank (sim)")
    p.add_argument("--task", type=int, action="append", default=[], help="watch a task tree")
    p.add_argument("--no-self", action="store_true", help="do not watch this process")
    p.add_argument("--no-gpu", action="store_true", help="skip NVML")
    p.add_argument("--powercap", default="/sys/class/powercap", help="powercap sysfs root")
    p.add_argument("--max-w-per-core", type=float, default=4.0, help="model: watts/core at 100%%")
    p.add_argument("--idle-fraction", type=float, default=0.3, help="model: idle/max power")
    return p.parse_args(argv)


def build(args: argparse.Namespace) -> Observer:
    """The observer the arguments describe, with its sinks and watched pids."""
    sinks: list[Sink] = []
    node = args.node or os.uname().nodename
    if args.pub:
        publisher = Publisher(args.pub)
        print(f"odop_obs: publishing on {publisher.endpoint}", file=sys.stderr)
        sinks.append(publisher)
    if args.run_dir:
        sinks.append(Recorder(args.run_dir, node))
    if args.stdout or not sinks:
        sinks.append(_Stdout())
    model = UtilisationModel(args.max_w_per_core, args.idle_fraction)
    sources = [RaplSource(args.powercap), NvmlPower(), model]
    obs = Observer.standard(
        sinks, gpu=not args.no_gpu, power_sources=sources, node=node, interval_s=args.interval
    )
    procs = obs.processes
    assert procs is not None
    if not args.no_self:
        procs.watch(os.getpid(), "odop", "odop_obs")
    for pid in args.pid:
        procs.watch(pid, "sim")
    for pid in args.task:
        procs.watch(pid, "task", tree=True)
    return obs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        obs = build(args)
    except ObsError as exc:
        print(f"odop_obs: {exc}", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: obs.stop(timeout_s=0))
    try:
        obs.run(count=args.count)
    finally:
        obs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
