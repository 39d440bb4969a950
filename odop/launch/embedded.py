"""odop inside the simulation: ``start``, ``submit`` and ``stop`` called by every rank.

Under MPI the calls are collective over the communicator (``MPI.COMM_WORLD`` or the one
passed): rank 0 creates the run, one rank (rank 0, or the first on ``scheduler_node``)
starts the scheduler unless an external one already serves the run, the first rank on each
node (a shared-memory split) starts that node's agent unless one runs there, and every rank
gets a client socket. Without MPI the single process plays all three parts.

Nothing here can hold the simulation up for long: sends never block, every submission is
journaled (odop/launch/journal.py) and resent until acknowledged, waits are bounded, and a
dead scheduler or agent is restarted by the rank that started it (odop/launch/failopen.py).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from odop.config import Config, load_config
from odop.errors import OdopError, UnknownTaskError
from odop.launch import discover, startup
from odop.launch.client import Client
from odop.launch.failopen import Keeper
from odop.launch.journal import Journal
from odop.launch.mpi import Comm, barrier, world
from odop.paths import RunPaths
from odop.phases import PhaseGate
from odop.protocol import MsgType, new_id, transport
from odop.tasks import registry

log = logging.getLogger("odop")
READY_WAIT_S = 15.0
"""Longest wait in odop.start() for the scheduler to take the declarations (seconds), on
a node whose ranks leave no core idle; elsewhere odop starts up beside the first steps."""
FLUSH_S = 5.0
"""Longest wait at stop for the scheduler to acknowledge this rank's submissions (s)."""


@dataclass
class Runtime:
    """What one rank holds between start() and stop()."""

    paths: RunPaths
    config: Config
    client: Client
    comm: Comm | None
    rank: int
    node: str
    tasks: set[str]
    keepers: list[Keeper] = field(default_factory=list)
    scheduler: Keeper | None = None
    gate: PhaseGate = field(init=False)
    """Which phase marks this rank sends (odop/phases.py)."""

    def __post_init__(self) -> None:
        self.gate = PhaseGate(self.config.phase_min_lend_s)


_runtime: Runtime | None = None


def node_name() -> str:
    """This node's id: $ODOP_NODE, else the host name."""
    return os.environ.get("ODOP_NODE") or os.uname().nodename


def start(run_name: str | None = None, task_folder: str | None = None,
          config: Any = None, comm: Any = None) -> RunPaths:
    """Bring odop up beside the simulation; every rank calls it. Returns the run folder."""
    global _runtime
    if _runtime is not None:
        raise OdopError("odop.start() was called twice; call odop.stop() first")
    cfg = load_config(config)
    comm = comm if comm is not None else world()
    where = startup.layout(comm, node_name())
    opened = startup.open_run(run_name, cfg, where.node) if where.rank == 0 else None
    if comm is not None:
        opened = comm.bcast(opened, root=0)
    assert opened is not None
    paths, external = opened
    transport.use_run(paths.root)
    scheduler = _start_scheduler(comm, where, cfg, paths, external)
    endpoint = discover.scheduler_endpoint(paths)
    journal = Journal(paths.root / "journal" / f"{where.node}-r{where.rank}-{os.getpid()}.jnl")
    rt = Runtime(paths, cfg, Client(endpoint, rank=where.rank, journal=journal), comm,
                 where.rank, where.node, tasks=set(), scheduler=scheduler)
    if scheduler is not None:
        rt.keepers.append(scheduler)
        scheduler.on_respawn = rt.client.resend_all
    local, ranks = startup.node_ranks(comm, where.rank)
    if local is None or local.Get_rank() == 0:
        agent = startup.start_agent(paths, where.node, ranks, cfg.sample_interval_s, endpoint)
        rt.keepers += [agent] if agent is not None else []
    rt.tasks = _declare(rt, task_folder)
    if not startup.node_has_spare_core(local, ranks):
        _wait_ready(rt)  # no idle core: odop starts up here, not in the first steps
    _runtime = rt
    return paths


def _wait_ready(rt: Runtime) -> None:
    """Wait, bounded by READY_WAIT_S, for the scheduler to take this rank's declarations
    and for the node's agent to finish starting up."""
    end = time.monotonic() + READY_WAIT_S
    rt.client.flush(READY_WAIT_S)
    discover.wait_agent_ready(rt.paths, rt.node, max(0.0, end - time.monotonic()))


def _start_scheduler(comm: Comm | None, where: startup.Layout, cfg: Config,
                     paths: RunPaths, external: bool) -> Keeper | None:
    """Start the scheduler on its rank unless an external one serves the run; every rank
    returns once the scheduler's endpoint is known (announced, for tcp://)."""
    if external:
        return None
    host = where.scheduler_rank(cfg)
    bind = "tcp://*:*" if where.multi_node else None
    keeper = startup.start_scheduler(paths, where.node, bind) if where.rank == host else None
    if comm is not None and where.multi_node:
        barrier(comm)  # the endpoint is announced: discover finds it on the shared folder
    return keeper


def _declare(rt: Runtime, task_folder: str | None) -> set[str]:
    folders = [task_folder] if task_folder else list(rt.config.task_dirs)
    if folders:
        from odop.tasks.loader import load_task_folder

        for folder in folders:
            load_task_folder(folder, executable_dirs=rt.config.executable_dirs, register=True)
    specs = registry.registered()
    rt.client.send(MsgType.DECLARE, track=True, tasks=[s.to_dict() for s in specs.values()])
    return set(specs)


def submit(task_name: str, /, **kwargs: Any) -> str:
    """Queue one execution of ``task_name`` with ``kwargs``; returns its id at once."""
    rt = _require()
    if task_name not in rt.tasks:
        raise UnknownTaskError(task_name, sorted(rt.tasks))
    execution = new_id()
    rt.client.submit(execution, task_name, kwargs)
    for keeper in rt.keepers:
        keeper.check()
    rt.client.pump()
    return execution


def stop(timeout_s: float | None = None) -> dict[str, Any]:
    """Drain the queue on every core, then shut odop down; every rank calls it.

    Returns, on rank 0, ``{"done", "failed", "drained"}`` plus ``"unacknowledged"`` (the
    count of submissions the scheduler never confirmed, kept in the journals) when not 0;
    elsewhere an empty dict.
    Every wait is bounded, except the drain when ``drain_timeout_s`` is None and the
    scheduler stays alive and busy.
    """
    global _runtime
    rt = _require()
    _runtime = None
    for keeper in rt.keepers:
        keeper.check(force=True)
    alive = _scheduler_alive(rt)
    if rt.comm is not None:
        alive = bool(rt.comm.allreduce(int(alive)))
    rt.client.flush(FLUSH_S if alive else 0.0)
    lost = _report_unacked(rt)
    barrier(rt.comm)
    summary: dict[str, Any] = {}
    if rt.rank == 0:
        summary = _drain(rt, timeout_s if timeout_s is not None else rt.config.drain_timeout_s)
    if rt.comm is not None:
        lost = rt.comm.reduce(lost, root=0)
    if rt.rank == 0 and lost:
        summary["unacknowledged"] = lost
    barrier(rt.comm, on_wait=lambda: _tend_agents(rt))  # rank 0 drains meanwhile
    _reap([k.proc for k in rt.keepers if k.proc is not None], grace_s=2.0)
    rt.client.close()
    transport.use_run(None)
    return summary


def _report_unacked(rt: Runtime) -> int:
    lost = [m for m in rt.client.unacked.values() if m[1]["type"] == "submit"]
    if lost and rt.client.journal is not None:
        log.warning("odop: %d submission(s) never reached the scheduler; kept in %s",
                    len(lost), rt.client.journal.path)
    return len(lost)


def _drain(rt: Runtime, timeout_s: float | None) -> dict[str, Any]:
    """Ask the scheduler to drain; restart it (and ask again) if it dies meanwhile."""
    end = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        left = None if end is None else max(0.0, end - time.monotonic())
        reply = rt.client.request(MsgType.SIM_END, left, rank=rt.rank,
                                  alive=lambda: _tend_agents(rt) and _scheduler_alive(rt))
        if reply is not None:
            return {"drained": True, "done": reply["done"], "failed": reply["failed"]}
        if rt.scheduler is None or (end is not None and time.monotonic() >= end):
            return {"drained": False, "done": None, "failed": None}
        if not rt.scheduler.check(force=True):
            return {"drained": False, "done": None, "failed": None}


def _tend_agents(rt: Runtime) -> bool:
    """Restart this rank's agent if it died: the drain needs every node's agent. (The
    scheduler is restarted by the drain loop itself, which then asks again.) Always True."""
    for keeper in rt.keepers:
        if keeper.role == "agent":
            keeper.check()
    return True


def _scheduler_alive(rt: Runtime) -> bool:
    if rt.scheduler is not None:
        return rt.scheduler.alive()
    live = discover.live_scheduler(rt.paths, rt.node)
    return live is not None


def _reap(children: list[subprocess.Popen], grace_s: float) -> None:
    end = time.monotonic() + grace_s
    for child in children:
        try:
            child.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(1.0)
            except subprocess.TimeoutExpired:
                child.kill()


def _require() -> Runtime:
    if _runtime is None:
        raise OdopError("odop is not started on this rank: call odop.start() first")
    return _runtime

