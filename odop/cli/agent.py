"""``odop agent``: the node agent (engine + observer) of a run.

Started by the node's first rank, by ``odop run``, or on every node by hand:
``mpiexec -ppn 1 odop agent --run NAME``. It finds the scheduler through ``--connect``,
``$ODOP_SCHEDULER`` or ``<run>/scheduler.endpoint`` (waiting up to ``--wait`` seconds).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from odop.cli.argtypes import positive_seconds, seconds
from odop.cli.common import chosen_run
from odop.config import Config, load_config, run_config
from odop.engine.spawn import keep_off
from odop.errors import OdopError
from odop.paths import RunPaths, resolve_run


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agent", help="run this node's agent for a run")
    p.add_argument("run", nargs="?", metavar="RUN", help="run name or run folder; or --run RUN")
    p.add_argument("--run", dest="run_option", metavar="RUN", help="the run, as an option")
    p.add_argument("--node", help="node id (default: $ODOP_NODE or the host name)")
    p.add_argument("--sim-pids", default="", help="comma-separated pids of this node's ranks")
    p.add_argument("--sim-root", type=int, help="pid whose descendants are the simulation")
    p.add_argument("--cores", help="comma-separated cores this agent may use (default: all)")
    p.add_argument("--interval", type=positive_seconds, default=None,
                   help="seconds between samples")
    p.add_argument("--connect", help="scheduler endpoint (default: discovered from the run)")
    p.add_argument("--wait", type=seconds, default=60.0,
                   help="seconds to wait for the run and its scheduler to appear")
    p.add_argument("--config", help="odop config file (TOML)")
    p.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    sim_pids = [int(p) for p in args.sim_pids.split(",") if p]
    keep_off(sim_pids)  # off the ranks' cores before the imports, when any core is spare
    from odop.launch import discover
    from odop.launch.slurm import check_host
    from odop.procs import die_with_parent, node_name
    from odop.protocol import transport

    if args.parent_pid:
        die_with_parent(args.parent_pid)
    check_host(os.uname().nodename)
    config = load_config(args.config)
    paths = _wait_run(chosen_run(args), config.home_path, args.wait)
    config = _run_config(paths, config)
    transport.use_run(paths.root)
    node = args.node or node_name()
    endpoint = args.connect or discover.scheduler_endpoint(paths, wait_s=args.wait)
    discover.require_reachable(endpoint, node, args.wait)
    try:
        discover.claim_agent(paths, node, os.getpid())
        _serve(paths, node, args, config, sim_pids, endpoint)
    except Exception as exc:
        from odop.cli.scheduler import storage_exit

        return storage_exit(exc, paths.root)
    return 0


def _serve(paths: RunPaths, node: str, args: argparse.Namespace, config: Config,
           sim_pids: list[int], endpoint: str) -> None:
    from odop.engine.agent import serve
    from odop.engine.spawn import all_cpus

    serve(Path(paths.root), node, sim_pids=sim_pids, sim_root=args.sim_root,
          cores=[int(c) for c in args.cores.split(",")] if args.cores else sorted(all_cpus()),
          interval_s=args.interval or config.sample_interval_s, endpoint=endpoint,
          grace_s=config.stop_grace_s, memory_bound=config.memory_bound,
          output_max_bytes=config.output_max_bytes)


def _run_config(paths: RunPaths, given: Config) -> Config:
    """The config the run records (what ``odop.start``/``odop run`` was given), unless
    ``--config`` named one."""
    from odop.store.executions import RunStore

    try:
        store = RunStore(paths.db, readonly=True)
    except Exception:  # no database yet: the run's creator has not written it
        return given
    try:
        return run_config(store.meta(), given)
    finally:
        store.close()


def _wait_run(run: str, home: Path, wait_s: float) -> RunPaths:
    """The run folder, waiting up to ``wait_s`` seconds for its creator (a scheduler)."""
    end = time.monotonic() + wait_s
    while True:
        try:
            return resolve_run(run, home)
        except OdopError as exc:
            if time.monotonic() >= end:
                raise OdopError(f"{exc} (waited {wait_s:g} s, --wait): the run folder must be "
                                "on a file system every node sees; this node looks under "
                                f"$ODOP_HOME = {home}") from exc
            time.sleep(0.2)
