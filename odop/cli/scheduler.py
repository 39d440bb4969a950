"""``odop scheduler``: serve one run's queue (also ``python scripts/scheduler.py``).

The run is created if new (with its CURVE keys); the bound endpoint is announced in
``<run>/scheduler.endpoint`` so that agents and ranks find it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from odop.cli.common import chosen_run
from odop.config import Config, load_config, run_config
from odop.engine.spawn import keep_off
from odop.paths import RunPaths, runs_folder
from odop.procs import node_name


def add_parser(sub: Any) -> None:
    p = sub.add_parser("scheduler", help="run the scheduler of a run")
    p.add_argument("run", nargs="?", metavar="RUN",
                   help="run name (created if new) or run folder; or --run RUN")
    p.add_argument("--run", dest="run_option", metavar="RUN", help="the run, as an option")
    p.add_argument("--bind", help="endpoint to bind, e.g. tcp://*:5555 or tcp://host:* "
                   "(default: $ODOP_SCHEDULER_BIND, else ipc:// in the run folder)")
    p.add_argument("--config", help="odop config file (TOML)")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def prepare_run(run: str, home: Path) -> RunPaths:
    """The run folder for ``run`` (a name or a path), created with its keys if new."""
    from odop.protocol import keys

    folder = Path(run) if "/" in run else runs_folder(home) / run
    paths = RunPaths(folder.resolve()).create()
    keys.generate(paths.root)
    if not paths.db.exists():
        from odop.store.executions import RunStore

        store = RunStore(paths.db)
        store.set_meta("run", paths.name)
        store.close()
    return paths


def run(args: argparse.Namespace) -> int:
    # off the rank's core before the imports: they must not slow a rank that computes
    keep_off([args.parent_pid] if args.parent_pid else [])
    from odop.procs import die_with_parent
    from odop.protocol import transport

    if args.parent_pid:
        die_with_parent(args.parent_pid)
    config = load_config(args.config)
    paths = prepare_run(chosen_run(args), config.home_path)
    transport.use_run(paths.root)
    bind = args.bind or os.environ.get("ODOP_SCHEDULER_BIND") or None
    try:
        serve(paths.root, config, endpoint=bind, parent_pid=args.parent_pid)
    except Exception as exc:
        return storage_exit(exc, paths.root)
    finally:
        transport.withdraw(paths.root)
    return 0


def storage_exit(exc: Exception, folder: Path) -> int:
    """EXIT_STORAGE, said in the log, when ``exc`` means the run folder takes no more
    writes (the keeper then starts this daemon no more); else ``exc`` goes on up."""
    from odop.launch.storage import EXIT_STORAGE, describe, storage_error

    if not storage_error(exc):
        raise exc
    print(f"odop: cannot write the run folder: {exc}; {describe(folder)}", file=sys.stderr)
    return EXIT_STORAGE


def _with_allocation(config: Config) -> Config:
    """The config with the allocation's end time from Slurm when it does not set one."""
    if config.alloc_end is not None:
        return config
    from odop.launch.slurm import allocation

    found = allocation()
    end = getattr(found, "end_time", None)
    return dataclasses.replace(config, alloc_end=end) if end else config


def serve(run_dir: Path, config: Config, *, endpoint: str | None = None,
          parent_pid: int | None = None) -> None:
    """Entry point of ``odop scheduler``: serve the run until it is drained or aborted."""
    from odop.scheduler.service import SchedulerService
    from odop.store.executions import RunStore

    paths = RunPaths(run_dir)
    config = _with_allocation(run_config(_meta(paths), config))
    service = SchedulerService(paths, config, endpoint=endpoint, parent_pid=parent_pid)
    node = node_name()
    service.store.add_component("scheduler", node, os.getpid(), service.endpoint)
    try:
        service.run()
    finally:
        end = RunStore(paths.db)
        end.end_component("scheduler", node, os.getpid())
        end.close()


def _meta(paths: RunPaths) -> dict[str, Any]:
    """The run's recorded meta (its config among it), if the run has a database yet."""
    from odop.store.executions import RunStore

    if not paths.db.exists():
        return {}
    store = RunStore(paths.db, readonly=True)
    try:
        return store.meta()
    finally:
        store.close()
