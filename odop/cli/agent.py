"""``odop agent``: the node agent (engine + observer) of a run."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from odop.config import load_config
from odop.paths import resolve_run


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="run this node's agent for a run")
    p.add_argument("--run", required=True, help="run name or run folder")
    p.add_argument("--node", help="node id (default: $ODOP_NODE or the host name)")
    p.add_argument("--sim-pids", default="", help="comma-separated pids of this node's ranks")
    p.add_argument("--cores", help="comma-separated cores this agent may use (default: all)")
    p.add_argument("--interval", type=float, default=None, help="seconds between samples")
    p.add_argument("--connect", help="scheduler endpoint (default: ipc:// in the run folder)")
    p.add_argument("--config", help="odop config file (TOML)")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from odop.engine.agent import serve
    from odop.engine.spawn import all_cpus
    from odop.launch.embedded import node_name
    from odop.procs import die_with_parent

    if args.parent_pid:
        die_with_parent(args.parent_pid)
    os.sched_setaffinity(0, all_cpus())  # not the cores of the rank that started us
    config = load_config(args.config)
    paths = resolve_run(args.run, config.home_path)
    serve(Path(paths.root), args.node or node_name(),
          sim_pids=[int(p) for p in args.sim_pids.split(",") if p],
          cores=[int(c) for c in args.cores.split(",")] if args.cores else None,
          interval_s=args.interval or config.sample_interval_s, endpoint=args.connect,
          grace_s=config.stop_grace_s)
    return 0
