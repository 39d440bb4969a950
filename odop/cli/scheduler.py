"""``odop scheduler``: serve one run's queue (also ``python scripts/scheduler.py``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from odop.config import load_config
from odop.paths import RunPaths, runs_folder


def add_parser(sub: Any) -> None:
    p = sub.add_parser("scheduler", help="run the scheduler of a run")
    p.add_argument("--run", required=True, help="run name (created if new) or run folder")
    p.add_argument("--bind", help="endpoint to bind (default: ipc:// in the run folder)")
    p.add_argument("--config", help="odop config file (TOML)")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from odop.engine.spawn import all_cpus
    from odop.procs import die_with_parent
    from odop.scheduler.service import serve

    if args.parent_pid:
        die_with_parent(args.parent_pid)
    os.sched_setaffinity(0, all_cpus())  # not the cores of the rank that started us
    config = load_config(args.config)
    folder = Path(args.run) if "/" in args.run else runs_folder(config.home_path) / args.run
    serve(RunPaths(folder.resolve()).create().root, config, endpoint=args.bind,
          parent_pid=args.parent_pid)
    return 0
