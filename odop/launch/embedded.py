"""odop inside the simulation: ``start``, ``submit`` and ``stop`` called by every rank.

Under MPI the calls are collective over the communicator (``MPI.COMM_WORLD`` or the one
passed): rank 0 creates the run, one rank (rank 0, or the first on ``scheduler_node``)
starts the scheduler unless an external one already serves the run, the first rank on each
node (a shared-memory split) starts that node's agent unless one runs there, and every rank
gets a client socket. Without MPI the single process plays all three parts.

Nothing here can hold the simulation up for long: sends never block, every submission is
journaled (odop/launch/journal.py) and resent until acknowledged, waits are bounded, and a
dead scheduler or agent is restarted by the rank that started it (odop/launch/failopen.py).
A rank talks to its node's agent once it serves, else straight to the scheduler
(odop/launch/route.py).
A step of start() that fails on any rank (an unwritable run folder, a bad config, a
scheduler that cannot start) fails on every rank together: by default odop then disables
itself everywhere with one warning and the simulation runs on, its submissions journaled.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from odop.config import Config, load_config
from odop.errors import OdopError, UnknownTaskError
from odop.launch import discover, startup
from odop.launch.client import Client, Unconfirmed
from odop.launch.failopen import Keeper, Watchdog
from odop.launch.journal import Journal, fallback_path
from odop.launch.mpi import Comm, barrier, world
from odop.paths import RunPaths
from odop.phasegate import PhaseGate
from odop.procs import node_name
from odop.protocol import MsgType, make, new_id, transport
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
    """Which phase marks this rank sends (odop/phasegate.py)."""

    def __post_init__(self) -> None:
        self.gate = PhaseGate(self.config.phase_min_lend_s)


_runtime: Runtime | None = None


def current() -> Runtime | None:
    """This rank's runtime between start() and stop(), else None (also when disabled)."""
    return _runtime


def start(run_name: str | None = None, task_folder: str | None = None,
          config: Any = None, comm: Any = None) -> RunPaths | None:
    """Bring odop up beside the simulation; every rank calls it. Returns the run folder,
    or None when odop could not start on some rank and disabled itself on all of them."""
    global _runtime, _disabled
    if _runtime is not None or _disabled is not None:
        raise OdopError("odop.start() was called twice; call odop.stop() first")
    steps = Steps(comm if comm is not None else world())
    try:
        _runtime = _bring_up(steps, run_name, task_folder, config)
    except StartFailed as failed:
        steps.undo()
        _disabled = _give_up(steps, failed, run_name)
        return None
    return _runtime.paths


class StartFailed(Exception):
    """A step of odop.start() failed on some rank (every rank raises it together)."""

    def __init__(self, rank: int, error: str, ranks: int) -> None:
        super().__init__(f"rank {rank}: {error}" + (f" (and {ranks - 1} more rank(s))"
                                                     if ranks > 1 else ""))


@dataclass
class Steps:
    """What odop.start() has done so far on this rank, to undo it when a step fails."""

    comm: Comm | None
    cfg: Config | None = None
    paths: RunPaths | None = None
    client: Client | None = None
    keepers: list[Keeper] = field(default_factory=list)

    def together(self, step: Callable[[], Any]) -> Any:
        """Run this rank's part of a step; if it failed on any rank, raise StartFailed on
        every rank (one allgather: each rank learns the first failure)."""
        try:
            result, error = step(), None
        except Exception as exc:  # any failure of any rank must reach every rank
            result, error = None, f"{type(exc).__name__}: {exc}"
        errors = self.comm.allgather(error) if self.comm is not None else [error]
        failed = [(rank, e) for rank, e in enumerate(errors) if e]
        if failed:
            raise StartFailed(failed[0][0], failed[0][1], len(failed))
        return result

    def undo(self) -> None:
        _reap([k.proc for k in self.keepers if k.proc is not None], grace_s=0.0)
        if self.client is not None:
            self.client.close()
        transport.use_run(None)


def _bring_up(steps: Steps, run_name: str | None, task_folder: str | None,
              config: Any) -> Runtime:
    comm = steps.comm
    cfg = steps.cfg = steps.together(lambda: load_config(config))
    where = startup.layout(comm, node_name())
    opened = steps.together(
        lambda: startup.open_run(run_name, cfg, where.node) if where.rank == 0 else None)
    paths, external = comm.bcast(opened, root=0) if comm is not None else opened
    steps.paths = paths
    transport.use_run(paths.root)
    scheduler = steps.together(lambda: _start_scheduler(where, cfg, paths, external))
    steps.keepers += [scheduler] if scheduler is not None else []
    if comm is not None and where.multi_node and not external:
        barrier(comm)  # the endpoint is announced: discover finds it on the shared folder
    endpoint = discover.scheduler_endpoint(paths)
    journal = _journal_path(paths.root, where.node, where.rank)
    steps.client = client = steps.together(lambda: Client(
        endpoint, rank=where.rank, journal=Journal(journal),
        find_agent=partial(transport.announced, paths.root, transport.relay_file(where.node))))
    rt = Runtime(paths, cfg, client, comm, where.rank, where.node, tasks=set(),
                 scheduler=scheduler, keepers=steps.keepers)
    if scheduler is not None:
        scheduler.on_respawn = rt.client.resend_all
    local, ranks = startup.node_ranks(comm, where.rank)
    leader = local is None or local.Get_rank() == 0
    agent = steps.together(lambda: startup.start_agent(
        paths, where.node, ranks, cfg.sample_interval_s, endpoint) if leader else None)
    rt.keepers += [agent] if agent is not None else []
    rt.tasks = steps.together(lambda: _declare(rt, task_folder))
    _say_unbound(comm, where.rank, leader and startup.unbound(ranks), where.node)
    if not startup.node_has_spare_core(local, ranks):
        _wait_ready(rt)  # no idle core: odop starts up here, not in the first steps
    return rt


def _wait_ready(rt: Runtime) -> None:
    """Wait, bounded by READY_WAIT_S, for the scheduler to take this rank's declarations
    and for the node's agent to finish starting up."""
    end = time.monotonic() + READY_WAIT_S
    rt.client.flush(READY_WAIT_S)
    discover.wait_agent_ready(rt.paths, rt.node, max(0.0, end - time.monotonic()))


def _journal_path(root: Path, node: str, rank: int) -> Path:
    """This rank's journal in the run folder ``root``."""
    return root / "journal" / f"{node}-r{rank}-{os.getpid()}.jnl"


def _say_unbound(comm: Comm | None, rank: int, unbound: bool, node: str) -> None:
    """Once for the job: ranks left unbound (MPICH's default) cover every core."""
    nodes = [n for n in (comm.gather(node if unbound else None, root=0)
                         if comm is not None else [node if unbound else None]) or [] if n]
    if rank == 0 and nodes:
        log.warning("odop: the ranks on %s are not bound to cores (MPICH's default): odop "
                    "cannot tell which cores they use and runs tasks only where their measured "
                    "use leaves room or in marked phases; bind them (mpiexec -bind-to core, "
                    "srun --cpu-bind=cores) to give odop whole idle cores", ", ".join(nodes))


def _give_up(steps: Steps, failed: StartFailed, run_name: str | None) -> Disabled:
    """odop could not start: raise on every rank (``start_failure = "raise"``) or, by
    default, disable odop on every rank with one warning; the simulation runs on."""
    comm = steps.comm
    rank = comm.Get_rank() if comm is not None else 0
    if steps.cfg is not None and steps.cfg.start_failure == "raise":
        raise OdopError(f"odop.start() failed on {failed}")
    if rank == 0 and steps.paths is not None:
        _mark_failed(steps.paths, str(failed))
    if steps.paths is not None:
        journal = Journal(_journal_path(steps.paths.root, node_name(), rank))
    else:  # no run folder: straight to the node's fallback folder, named as the run would be
        name = run_name or os.environ.get("ODOP_RUN") or "unstarted"
        journal = Journal(fallback_path(_journal_path(Path(name), node_name(), rank)))
    if rank == 0:
        log.warning("odop: disabled on every rank: odop.start() failed on %s. The simulation "
                    "runs on without odop; submissions are kept in journals (%s). Set "
                    "start_failure = \"raise\" in the odop config to stop instead.",
                    failed, journal.path.parent)
    return Disabled(str(failed), rank, comm, set(registry.registered()), journal)


def _mark_failed(paths: RunPaths, why: str) -> None:
    """Say in the run's database that it never started (its folder may take no writes)."""
    from odop.store.executions import RunStore

    try:
        store = RunStore(paths.db)
        try:
            store.set_meta("start_failed", why)
        finally:
            store.close()
    except Exception as exc:  # a read-only or full folder: the warning says it all
        log.debug("cannot mark run %s as failed at start: %s", paths.name, exc)


@dataclass
class Disabled:
    """A rank on which odop disabled itself: submissions go to its journal only."""

    reason: str
    rank: int
    comm: Comm | None
    tasks: set[str]
    journal: Journal
    kept: int = 0
    unwritten: int = 0

    def submit(self, task_name: str, kwargs: dict[str, Any]) -> str:
        if self.tasks and task_name not in self.tasks:
            raise UnknownTaskError(task_name, sorted(self.tasks))
        execution = new_id()
        msg = make(MsgType.SUBMIT, execution=execution, task=task_name, args=kwargs,
                   rank=self.rank)
        if self.journal.submitted(msg):
            self.kept += 1
        else:
            self.unwritten += 1
        return execution

    def stop(self) -> dict[str, Any]:
        """Rank 0 gets the counts of every rank; nothing here can hang (all ranks are
        disabled together, so the collectives match)."""
        counts = (self.kept, self.unwritten)
        every = self.comm.gather(counts, root=0) if self.comm is not None else [counts]
        self.journal.close()
        if self.rank != 0:
            return {}
        return {"disabled": self.reason, "drained": False, "done": None, "failed": None,
                "journalled": sum(k for k, _ in every), "unwritten": sum(u for _, u in every),
                "journal": str(self.journal.path.parent)}


_disabled: Disabled | None = None


def _declare(rt: Runtime, task_folder: str | None) -> set[str]:
    folders = [task_folder] if task_folder else list(rt.config.task_dirs)
    if folders:
        from odop.tasks.loader import load_task_folder

        for folder in folders:
            load_task_folder(folder, executable_dirs=rt.config.executable_dirs, register=True)
    specs = registry.registered()
    if rt.rank == 0:  # where the logs end, before any rank goes on (each step is collective)
        from odop.tasks.triggers import note_start

        note_start(rt.paths.db, specs.values())
    rt.client.send(MsgType.DECLARE, track=True, tasks=[s.to_dict() for s in specs.values()])
    return set(specs)


def _start_scheduler(where: startup.Layout, cfg: Config, paths: RunPaths,
                     external: bool) -> Keeper | None:
    """Start the scheduler on its rank unless an external one serves the run."""
    if external or where.rank != where.scheduler_rank(cfg):
        return None
    return startup.start_scheduler(paths, where.node, "tcp://*:*" if where.multi_node else None)


def submit(task_name: str, /, **kwargs: Any) -> str:
    """Queue one execution of ``task_name`` with ``kwargs``; returns its id at once."""
    if _disabled is not None:
        return _disabled.submit(task_name, kwargs)
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

    Returns, on rank 0, ``{"drained", "done", "failed", "account"}``: the account
    (odop/launch/account.py) of every submission, with those the scheduler never
    confirmed counted as ``journalled`` (kept in the ranks' journals) or ``unwritten``;
    elsewhere an empty dict. With odop disabled at start, ``{"disabled": why, ...}``.
    A failure on one rank never leaves another waiting in a collective. Every wait is
    bounded, except the drain when ``drain_timeout_s`` is None and the scheduler stays
    alive and busy.
    """
    global _runtime, _disabled
    if _disabled is not None:
        disabled, _disabled = _disabled, None
        return disabled.stop()
    rt = _require()
    _runtime = None
    for keeper in rt.keepers:
        keeper.check(force=True)
    alive = _scheduler_alive(rt)
    if rt.comm is not None:
        alive = bool(rt.comm.allreduce(int(alive)))
    rt.client.flush(FLUSH_S if alive else 0.0)
    barrier(rt.comm)
    summary: dict[str, Any] = {}
    if rt.rank == 0:
        summary = _drain(rt, timeout_s if timeout_s is not None else rt.config.drain_timeout_s)
    # meanwhile every rank resends what is unconfirmed (to a restarted scheduler too)
    barrier(rt.comm, on_wait=lambda: _keep_up(rt))
    kept = _unacked(rt)  # after the drain: what no scheduler took stays in the journal
    every = rt.comm.gather(kept, root=0) if rt.comm is not None else [kept]
    if rt.rank == 0:
        summary["account"] = account = _account(rt, every)
        summary["drained"] = summary["drained"] and not (account.get("queued")
                                                         or account.get("running"))
    _reap([k.proc for k in rt.keepers if k.proc is not None], grace_s=2.0)
    rt.client.close()
    transport.use_run(None)
    return summary


def _unacked(rt: Runtime) -> Unconfirmed:
    """This rank's submissions the scheduler never confirmed."""
    left = rt.client.unconfirmed()
    kept = len(left.held) + left.unsent
    if kept and rt.client.journal is not None:
        log.warning("odop: %d submission(s) not confirmed by the scheduler; kept in %s",
                    kept, rt.client.journal.path)
    return left


def _account(rt: Runtime, every: list[Unconfirmed] | None) -> dict[str, Any]:
    """The run's account, with what the ranks know of their own unconfirmed submissions;
    a failure to read it is said, never raised (stop() must return)."""
    from odop.launch.account import take

    every = every or []
    try:
        account = take(rt.paths, held=[e for u in every for e in u.held],
                       unsent=sum(u.unsent for u in every),
                       unwritten=sum(u.unwritten for u in every),
                       refused=sum(u.refused for u in every))
    except Exception as exc:  # the run folder unreadable: say so, and return
        return {"error": f"cannot take the account: {exc}"}
    return account.to_dict()


def _drain(rt: Runtime, timeout_s: float | None) -> dict[str, Any]:
    """Ask the scheduler to drain; restart it (and ask again) if it dies meanwhile."""
    end = None if timeout_s is None else time.monotonic() + timeout_s
    watchdog = Watchdog(rt.client, rt.scheduler, rt.config.scheduler_silence_s)
    while True:
        left = None if end is None else max(0.0, end - time.monotonic())
        reply = rt.client.request(MsgType.SIM_END, left, rank=rt.rank,
                                  alive=lambda: _tend_agents(rt) and _scheduler_alive(rt)
                                  and watchdog())
        if reply is not None:
            return {"drained": True, "done": reply["done"], "failed": reply["failed"]}
        if rt.scheduler is None or (end is not None and time.monotonic() >= end):
            return {"drained": False, "done": None, "failed": None}
        if not rt.scheduler.check(force=True):
            return {"drained": False, "done": None, "failed": None}


def _keep_up(rt: Runtime) -> None:
    """A rank's turn while rank 0 drains: its agent alive, its unconfirmed resent."""
    _tend_agents(rt)
    rt.client.pump()


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

