"""odop inside the simulation: ``start``, ``submit`` and ``stop`` called by every rank.

Under MPI the calls are collective over the communicator: rank 0 creates the run and starts
the scheduler, the first rank on each node (a shared-memory split) starts that node's agent
with the pids of the node's ranks, and every rank gets a client socket. Without MPI the
single process plays all three parts. Nothing here can hold the simulation up for long:
sends never block, waits are bounded, and a dead scheduler only costs a warning.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odop.config import Config, load_config
from odop.errors import OdopError, UnknownTaskError
from odop.launch.client import Client
from odop.launch.daemons import spawn_daemon
from odop.launch.mpi import Comm, barrier, node_comm, world
from odop.paths import RunPaths, new_run_name, runs_folder
from odop.procs import pid_alive
from odop.protocol import MsgType, new_id
from odop.store.executions import RunStore
from odop.tasks import registry

log = logging.getLogger("odop")
FLUSH_S = 5.0


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
    children: list[subprocess.Popen] = field(default_factory=list)
    scheduler: subprocess.Popen | None = None


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
    rank = comm.Get_rank() if comm is not None else 0
    node = node_name()
    paths = _create_run(run_name, cfg, node) if rank == 0 else None
    if comm is not None:
        paths = comm.bcast(paths, root=0)
    assert paths is not None
    rt = Runtime(paths, cfg, Client(paths.scheduler_endpoint, rank=rank), comm, rank, node,
                 tasks=set())
    if rank == 0:
        rt.scheduler = spawn_daemon("scheduler", [], paths, node)
        rt.children.append(rt.scheduler)
    _start_agent(rt)
    rt.tasks = _declare(rt, task_folder)
    _runtime = rt
    return paths


def _create_run(run_name: str | None, cfg: Config, node: str) -> RunPaths:
    name = run_name or new_run_name()
    paths = RunPaths(runs_folder(cfg.home_path) / name).create()
    store = RunStore(paths.db)
    store.set_meta("run", name)
    store.set_meta("started", time.time())
    store.set_meta("config", {k: v for k, v in cfg.__dict__.items() if k != "extra"})
    store.close()
    return paths


def _start_agent(rt: Runtime) -> None:
    """The first rank of each node starts the node's agent, watching the node's ranks."""
    local = node_comm(rt.comm)
    me = (os.getpid(), sorted(os.sched_getaffinity(0)))
    ranks = local.gather(me, root=0) if local is not None else [me]
    if local is None or local.Get_rank() == 0:
        pids = ",".join(str(pid) for pid, _ in ranks or [])
        args = ["--node", rt.node, "--sim-pids", pids,
                "--interval", str(rt.config.sample_interval_s)]
        rt.children.append(spawn_daemon("agent", args, rt.paths, rt.node))


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
    rt.client.pump()
    return execution


def stop(timeout_s: float | None = None) -> dict[str, Any]:
    """Drain the queue on every core, then shut odop down; every rank calls it.

    Returns, on rank 0, ``{"done", "failed", "drained"}``; elsewhere an empty dict.
    """
    global _runtime
    rt = _require()
    _runtime = None
    rt.client.flush(FLUSH_S if _scheduler_alive(rt) else 0.0)
    if rt.client.unacked:
        log.warning("odop: %d message(s) never reached the scheduler", len(rt.client.unacked))
    barrier(rt.comm)
    summary: dict[str, Any] = {}
    if rt.rank == 0:
        summary = _drain(rt, timeout_s if timeout_s is not None else rt.config.drain_timeout_s)
    barrier(rt.comm)
    _reap(rt.children, grace_s=2.0)
    rt.client.close()
    return summary


def _drain(rt: Runtime, timeout_s: float | None) -> dict[str, Any]:
    reply = rt.client.request(MsgType.SIM_END, timeout_s, rank=rt.rank,
                              alive=lambda: _scheduler_alive(rt))
    if reply is None:
        return {"drained": False, "done": None, "failed": None}
    return {"drained": True, "done": reply["done"], "failed": reply["failed"]}


def _scheduler_alive(rt: Runtime) -> bool:
    if rt.scheduler is not None:
        return rt.scheduler.poll() is None
    store = RunStore(rt.paths.db, readonly=True)
    try:
        live = [c for c in store.components() if c["role"] == "scheduler" and not c["ended_at"]]
    finally:
        store.close()
    return any(pid_alive(c["pid"]) for c in live)


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


def run_folder() -> Path:
    """The current run's folder (after start)."""
    return _require().paths.root
