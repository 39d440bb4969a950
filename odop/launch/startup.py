"""The collective part of ``odop.start``: who creates the run, who hosts the scheduler,
which rank leads each node, and what every rank learns about the others.

All functions here are called by every rank of the communicator (or by the one process
when there is no MPI) in the same order.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odop.config import Config, config_to_dict
from odop.errors import OdopError
from odop.launch import discover
from odop.launch.daemons import spawn_daemon
from odop.launch.failopen import EARLY_S, MAX_EARLY, Diagnose, Keeper
from odop.launch.mpi import Comm, node_comm
from odop.launch.slurm import check_host
from odop.launch.storage import EXIT_STORAGE, describe, no_room
from odop.paths import RunPaths, new_run_name, runs_folder
from odop.protocol import keys, transport
from odop.store.executions import RunStore

ANNOUNCE_WAIT_S = 30.0
"""Longest wait for a tcp:// scheduler to announce its endpoint at start (seconds)."""


@dataclass
class Layout:
    """Where things run: this rank, its node, and the job's nodes."""

    rank: int
    node: str
    nodes: list[str]
    """Node of every rank, by rank."""

    @property
    def multi_node(self) -> bool:
        return len(set(self.nodes)) > 1

    def scheduler_rank(self, config: Config) -> int:
        """The first rank on ``config.scheduler_node`` (rank 0 when unset)."""
        if config.scheduler_node is None:
            return 0
        if config.scheduler_node not in self.nodes:
            raise OdopError(f"config scheduler_node = {config.scheduler_node!r} is not a node "
                            f"of this job; allowed: {', '.join(sorted(set(self.nodes)))}")
        return self.nodes.index(config.scheduler_node)


def layout(comm: Comm | None, node: str) -> Layout:
    if comm is None:
        return Layout(0, node, [node])
    return Layout(comm.Get_rank(), node, list(comm.allgather(node)))


def open_run(run_name: str | None, cfg: Config, node: str, *,
             wrapped: bool = False) -> tuple[RunPaths, bool]:
    """The run folder (created with its keys if new) and whether a scheduler already
    serves it (an external one: then this job starts none). ``wrapped``: ``odop run``
    owns the ranks, and reports their end itself."""
    name = run_name or os.environ.get("ODOP_RUN") or new_run_name()
    folder = Path(name) if os.sep in name else runs_folder(cfg.home_path) / name
    paths = RunPaths(folder.resolve())
    external = paths.db.exists() and discover.live_scheduler(paths, node) is not None
    paths.create()
    keys.generate(paths.root)
    store = RunStore(paths.db)
    store.set_meta("run", paths.name)
    store.set_meta("started", time.time())
    store.set_meta("config", config_to_dict(cfg))
    store.set_meta("cwd", os.getcwd())  # where the triggers' relative paths start
    if wrapped:
        store.set_meta("wrapped", True)
    store.close()
    return paths, external


def start_scheduler(paths: RunPaths, node: str, bind: str | None) -> Keeper:
    """Start the run's scheduler from this rank; kept alive by a :class:`Keeper`."""
    bind = bind or os.environ.get("ODOP_SCHEDULER_BIND") or None  # as the scheduler reads it
    if bind is not None:
        (paths.root / transport.ENDPOINT_FILE).unlink(missing_ok=True)
    state = {"bind": bind}

    def spawn() -> subprocess.Popen:
        args = ["--bind", state["bind"]] if state["bind"] else []
        return spawn_daemon("scheduler", args, paths, node, [os.sched_getaffinity(0)])

    keeper = Keeper("scheduler", spawn, diagnosis(paths, "scheduler"))
    if bind is not None and bind.startswith("tcp://"):
        found = wait_announced(paths, alive=keeper.alive)
        state["bind"] = "tcp://*:" + found.rsplit(":", 1)[1]  # a restart keeps the port
    return keeper


def wait_announced(paths: RunPaths, wait_s: float = ANNOUNCE_WAIT_S,
                   alive: Callable[[], bool] | None = None) -> str:
    """The tcp:// endpoint the run's scheduler announced, once it has; raises when it
    does not in ``wait_s`` seconds or its process (``alive``) exits first."""
    end = time.monotonic() + wait_s
    while (found := transport.announced(paths.root)) is None:
        if alive is not None and not alive():
            raise OdopError(f"the scheduler of run {paths.name} exited before it announced "
                            f"its endpoint: {last_words(paths, 'scheduler')}")
        if time.monotonic() > end:
            raise OdopError(f"the scheduler of run {paths.name} did not announce its endpoint "
                            f"in {wait_s:.0f}s; see {paths.logs}/scheduler-*.log")
        time.sleep(0.05)
    return found


def last_words(paths: RunPaths, role: str) -> str:
    """The last line of a daemon's log (its error, when it died), and where the log is."""
    logs = sorted(paths.logs.glob(f"{role}-*.log"), key=lambda p: p.stat().st_mtime)
    if not logs:
        return f"no log in {paths.logs}"
    try:
        lines = logs[-1].read_text(errors="replace").strip().splitlines()
    except OSError as exc:
        return f"cannot read {logs[-1]}: {exc.strerror}"
    return f"{lines[-1].strip() if lines else '(empty)'} (see {logs[-1]})"


def node_ranks(comm: Comm | None, rank: int) -> tuple[Comm | None, list[dict[str, Any]]]:
    """This node's communicator and, on its leader, every local rank's pid/host/cores."""
    local = node_comm(comm)
    me = {"rank": rank, "pid": os.getpid(), "host": os.uname().nodename,
          "cores": sorted(os.sched_getaffinity(0))}
    ranks = local.gather(me, root=0) if local is not None else [me]
    return local, list(ranks or [])


def spare_cores(ranks: list[dict[str, Any]], cpus: set[int]) -> int:
    """How many of the node's ``cpus`` its ``ranks`` leave idle: those no bound rank is
    bound to, less one for each unbound rank (its mask covers the node)."""
    masks = [set(r["cores"]) for r in ranks]
    bound = [m for m in masks if m < cpus]
    free = cpus.difference(*bound)
    return max(0, len(free) - (len(masks) - len(bound)))


def unbound(ranks: list[dict[str, Any]]) -> bool:
    """True when a rank of the node may run on every core (no binding)."""
    from odop.engine.spawn import all_cpus

    cpus = all_cpus()
    return any(set(r["cores"]) >= cpus for r in ranks) and len(cpus) > 1


def node_has_spare_core(local: Comm | None, ranks: list[dict[str, Any]]) -> bool:
    """True on every rank of a node whose ranks leave a core idle (its leader decides)."""
    from odop.engine.spawn import all_cpus

    spare = False
    if local is None or local.Get_rank() == 0:
        spare = spare_cores(ranks, all_cpus()) > 0
    return bool(local.bcast(spare, root=0)) if local is not None else spare


def start_agent(paths: RunPaths, node: str, ranks: list[dict[str, Any]],
                interval_s: float, endpoint: str) -> Keeper | None:
    """Start this node's agent for ``ranks``, connecting to the scheduler at ``endpoint``,
    unless one already serves the node."""
    discover.require_shared(paths, node)
    check_host(os.uname().nodename)
    discover.write_ranks(paths, node, ranks)
    if discover.live_agent(paths, node) is not None:
        return None  # started by hand (mpiexec -ppn 1 odop agent) or by odop run
    pids = ",".join(str(r["pid"]) for r in ranks)
    args = ["--node", node, "--sim-pids", pids, "--interval", str(interval_s),
            "--connect", endpoint]
    masks = [set(r["cores"]) for r in ranks]
    return Keeper("agent", lambda: spawn_daemon("agent", args, paths, node, masks),
                  diagnosis(paths, "agent"))


def diagnosis(paths: RunPaths, role: str) -> Diagnose:
    """For a Keeper: why a daemon that exited must not be restarted (a full or read-only
    run folder, or a daemon that keeps dying at its start), with the cause in words."""
    def diagnose(code: int | None, early: int) -> str | None:
        if code == EXIT_STORAGE or (code and no_room(paths.root)):
            return f"it cannot write the run folder ({describe(paths.root)})"
        if early >= MAX_EARLY:
            return (f"it exited {early} times in a row within {EARLY_S:.0f} s of its start "
                    f"(last status {code}): {last_words(paths, role)}")
        return None
    return diagnose
