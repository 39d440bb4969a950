"""The scheduler process: the run's queue, its nodes, and the loop that drives decisions.

It binds a ROUTER socket that agents (DEALER, identity ``agent:<node>``) and clients
(simulation ranks, the CLI) connect to. Every cycle is driven by an event: a submission,
a sample, an exit. Every state change is written to SQLite before it is acted on, so a
scheduler killed at any instant restarts from the database with nothing lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import zmq

from odop.config import Config, run_config
from odop.errors import ProtocolError
from odop.paths import RunPaths
from odop.procs import pid_alive
from odop.protocol import MsgType, decode, encode, make, new_id, transport, validate
from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider, Placed
from odop.scheduler.energy import EnergyPolicy
from odop.scheduler.holds import Holds
from odop.scheduler.plugins import make_placement, make_selection
from odop.scheduler.predict import IdlePredictor
from odop.scheduler.preemption import PhaseBook, Preemption
from odop.scheduler.selection import Pending
from odop.scheduler.triggers import TriggerSet
from odop.store.executions import RunStore, TransitionError
from odop.store.profiles import Measurement, ProfileStore
from odop.store.states import ExecState

log = logging.getLogger("odop.scheduler")
LOST_S = 5.0
"""An execution its agent no longer reports for this long is lost (and requeued)."""
LOST_RETRIES = 3
"""Requeues of lost executions (node or agent gone) on top of the task's own retries."""


class SchedulerService:
    """Owns one run's database and decides for all its nodes."""

    def __init__(self, paths: RunPaths, config: Config, *, endpoint: str | None = None,
                 parent_pid: int | None = None) -> None:
        self.paths, self.config, self.parent_pid = paths, config, parent_pid
        self.store = RunStore(paths.db)
        self.profiles = ProfileStore(config.home_path / "profiles.db")
        self.decider = Decider(make_selection(config.selection), make_placement(config.placement),
                               busy_threshold=config.busy_threshold_pct / 100)
        self.endpoint = endpoint or paths.scheduler_endpoint
        self.sock = transport.router(self.endpoint)
        self.node_stale_s = max(10.0, 5 * config.sample_interval_s)
        self.missing: dict[str, float] = {}
        self.cancelling: set[str] = set()
        self.waiters: list[tuple[bytes, str]] = []
        self.agents: dict[str, int] = {}
        """node -> pid of its agent, for the components table."""
        self.invalid = 0
        self.running = True
        self.dirty = True
        self.triggers = TriggerSet(str(paths.db))
        self.energy = EnergyPolicy.from_config(config.extra.get("energy", {}),
                                               alloc_end=config.alloc_end)
        self.holds = Holds(self.energy, self.decider, alloc_end=config.alloc_end)
        self.started_at: dict[str, float] = {}
        self.phases = PhaseBook(config.idle_phases)
        self.preemption = Preemption(self)
        self.reported_bound: dict[str, frozenset[int]] = {}
        self.predictors: dict[str, IdlePredictor] = {}
        self.next_prediction_record = time.monotonic() + 10.0
        self.window = max(1, round(config.prediction_window_s / config.sample_interval_s))
        self._load()

    # -- restart ------------------------------------------------------------------------
    def _load(self) -> None:
        """Rebuild the in-memory queue and grants from the database."""
        self.decider.specs.update(self.store.tasks())
        self.triggers.update(self.decider.specs)
        meta = self.store.meta()
        self.decider.sim_running = "sim_end" not in meta
        for row in self.store.in_states(ExecState.QUEUED):
            self.decider.enqueue(self._pending(row))
        for row in self.store.in_states(ExecState.PLACED, ExecState.RUNNING, ExecState.PAUSED):
            self.decider.activate(row["id"], row["task"], row["node"] or "", row["cores"])
            self.missing[row["id"]] = time.monotonic()

    def _pending(self, row: dict[str, Any]) -> Pending:
        estimate = self.profiles.estimate(row["task"])
        return Pending(row["id"], row["task"], row["args"], row["submitted_at"],
                       priority=row["priority"], deadline=row["deadline"],
                       not_before=row["not_before"], attempt=row["attempt"],
                       expected_s=estimate.duration_s)

    # -- loop ---------------------------------------------------------------------------
    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self._abort("scheduler received SIGTERM"))
        self.store.set_meta("scheduler_started", time.time())
        self.energy.start()
        next_check = time.monotonic()
        while self.running:
            self._wait_for_events()
            if self.dirty or self._holds_due():
                self.dirty = False
                self.preemption.resume_paused()
                now = time.time()
                free = self.decider.free_cores()
                self.holds.apply(now, any(free.values()))
                self._act(self.decider.cycle(now))
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                self._housekeeping()
        self.triggers.close()
        self.energy.stop()
        self.sock.close()
        self.store.close()
        self.profiles.close()

    def _holds_due(self) -> bool:
        due = self.holds.next_due()
        return due is not None and due <= time.time()

    def _wait_for_events(self) -> None:
        """Block until a message, a trigger or a timer needs attention, then serve it."""
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        fds = self.triggers.fds()
        for fd in fds:
            poller.register(fd, zmq.POLLIN)
        now = time.time()
        timeout = 0.0 if self.dirty else self.triggers.timeout_s(now, 0.2)
        events = dict(poller.poll(timeout * 1000))
        if self.sock in events:
            self._drain_socket()
        ready = {fds[fd] for fd in fds if fd in events}
        self._fire_triggers(time.time(), ready)

    def _fire_triggers(self, now: float, ready: set[str]) -> None:
        fired = self.triggers.poll(now, ready)
        for _, task, kwargs in fired:
            self._queue(new_id(), task, kwargs, origin="trigger")
        for watcher in {id(w): w for w, _, _ in fired}.values():
            watcher.commit()

    def _queue(self, execution: str, task: str, args: dict[str, Any], origin: str) -> bool:
        """Record a new execution and put it in the decision queue."""
        spec = self.decider.specs[task]
        now = time.time()
        deadline = now + spec["deadline_s"] if spec.get("deadline_s") else None
        if not self.store.add(execution, task, args, origin=origin, now=now, deadline=deadline,
                              priority=spec.get("priority", 0)):
            return False
        self.decider.enqueue(self._pending(self.store.get(execution) or {}))
        self.dirty = True
        return True

    def _drain_socket(self) -> None:
        for _ in range(1000):
            try:
                ident, data = self.sock.recv_multipart(zmq.NOBLOCK)[:2]
            except zmq.Again:
                return
            except ValueError:
                self.invalid += 1
                continue
            try:
                mtype, msg = validate(decode(data))
                self._handle(ident, mtype, msg)
            except ProtocolError as exc:
                self.invalid += 1
                log.warning("invalid message #%d: %s", self.invalid, exc)
                self._send(ident, MsgType.ERROR, ref=None, error=str(exc))

    def _send(self, ident: bytes, mtype: MsgType, **fields: Any) -> None:
        try:
            self.sock.send_multipart([ident, encode(make(mtype, **fields))], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("cannot send %s to %r: %s", mtype.value, ident, exc)

    def _handle(self, ident: bytes, mtype: MsgType, msg: Any) -> None:
        handler = self._handlers.get(mtype)
        if handler is None:
            raise ProtocolError(f"the scheduler does not accept {mtype.value} messages")
        handler(self, ident, msg)

    # -- client messages ----------------------------------------------------------------
    def _on_declare(self, ident: bytes, msg: Any) -> None:
        specs = {s["name"]: s for s in msg["tasks"] if isinstance(s, dict) and "name" in s}
        new = {k: v for k, v in specs.items() if self.decider.specs.get(k) != v}
        if new:
            self.decider.specs.update(new)
            self.store.put_tasks(new)
            for name, spec in new.items():
                self.profiles.declare(name, spec)
            self.triggers.update(new)
        self._send(ident, MsgType.ACK, ref=msg["id"])

    def _on_submit(self, ident: bytes, msg: Any) -> None:
        spec = self.decider.specs.get(msg["task"])
        origin = f"rank {msg['rank']}" if msg.get("rank") is not None else "client"
        if spec is None:
            self._send(ident, MsgType.ERROR, ref=msg["id"],
                       error=f"unknown task {msg['task']!r}; known: {sorted(self.decider.specs)}")
            return
        self._queue(msg["execution"], msg["task"], msg["args"], origin)
        self._send(ident, MsgType.ACK, ref=msg["id"])

    def _on_cancel(self, ident: bytes, msg: Any) -> None:
        execution = msg["execution"]
        row = self.store.get(execution)
        if row is None:
            self._send(ident, MsgType.ERROR, ref=msg["id"], error=f"no execution {execution}")
            return
        if execution in self.decider.pending or self.holds.drop(execution):
            self.decider.pending.pop(execution, None)
            self.store.transition(execution, ExecState.CANCELLED, detail="cancelled by user")
        elif execution in self.decider.active or self.preemption.owns(execution):
            self.cancelling.add(execution)
            self.send_command(execution, MsgType.KILL, reason="cancelled by user")
        self._send(ident, MsgType.ACK, ref=msg["id"])

    def _on_status(self, ident: bytes, msg: Any) -> None:
        nodes = {n.name: {"cores": n.cores, "granted": sorted(n.granted),
                          "free": n.free(sim_running=self.decider.sim_running,
                                        threshold=self.decider.busy_threshold),
                          "power_w": n.power_w} for n in self.decider.nodes.values()}
        body = {"counts": self.store.counts(), "nodes": nodes, "invalid": self.invalid,
                "sim_running": self.decider.sim_running, "held": len(self.holds.held),
                "energy": self.energy.status(time.time())}
        self._send(ident, MsgType.REPLY, ref=msg["id"], body=body)

    def _on_sim_end(self, ident: bytes, msg: Any) -> None:
        if self.decider.sim_running:
            self.decider.sim_running = False
            self.store.set_meta("sim_end", time.time())
            self._fire_triggers(time.time(), set(self.triggers.watchers))  # last files in
        self.waiters.append((ident, msg["id"]))
        self.dirty = True

    # -- agent messages -----------------------------------------------------------------
    def _on_hello(self, ident: bytes, msg: Any) -> None:
        self._node(ident, msg["node"], msg["cores"])
        self.agents[msg["node"]] = msg["pid"]
        self.store.add_component("agent", msg["node"], msg["pid"])

    def _node(self, ident: bytes, name: str, cores: list[int]) -> Node:
        node = self.decider.nodes.get(name)
        if node is None or node.identity != ident:
            node = Node(name, ident, sorted(int(c) for c in cores))
            self.decider.add_node(node)
            self.dirty = True
        return node

    def _on_sample(self, ident: bytes, msg: Any) -> None:
        view = msg["sample"]
        node = self._node(ident, msg["node"], view.get("cores") or [])
        node.update(view, msg["sim_alive"])
        self._predict(node)
        self.reported_bound[node.name] = node.sim_bound
        node.sim_bound = node.sim_bound - self.phases.lent(node.name)
        self.preemption.shortfall(node, self.decider.sim_running)
        self._power_cap(node)
        running = set(msg["running"])
        now = time.monotonic()
        for execution, (_, where, _) in self.decider.active.items():
            if where != node.name or execution in running:
                self.missing.pop(execution, None)
            else:
                self.missing.setdefault(execution, now)
        if not msg["sim_alive"] and self.decider.sim_running:
            self._abort(f"simulation on {node.name} ended without odop.stop()")
        self.dirty = True

    def _power_cap(self, node: Node) -> None:
        """Keep the node under its power cap: pause the lowest-priority tasks first."""
        if self.energy.settings.cap_for(node.name) is None:
            return
        running = [{"id": e, "priority": self.decider.specs.get(t, {}).get("priority", 0),
                    "stoppable": True, "started_at": self.started_at.get(e, time.time()),
                    "paused": False}
                   for e, (t, n, _) in self.decider.active.items() if n == node.name]
        running += [{"id": e, "priority": 0, "stoppable": True, "started_at": 0.0,
                     "paused": True} for e in self.preemption.capped]
        pause, resume = self.energy.power_cap(node.name, node.power_w, running, now=time.time())
        for execution in pause:
            self.preemption.preempt(execution, f"node {node.name} over its power cap",
                                    policy="pause", capped=True)
        for execution in resume:
            self.preemption.capped.discard(execution)
        self.dirty = self.dirty or bool(resume)

    def _predict(self, node: Node) -> None:
        """Learn the node's utilisation; an unbound simulation's cores count as busy if they
        are expected busy within the prediction window."""
        predictor = self.predictors.get(node.name)
        if predictor is None or predictor.buf.shape[1] != len(node.util):
            predictor = self.predictors[node.name] = IdlePredictor(
                len(node.util), threshold=self.decider.busy_threshold)
        predictor.observe(node.util)
        if not node.sim_bound and node.util:
            node.util = predictor.expected(self.window).tolist()

    def _record_predictions(self) -> None:
        now = time.time()
        for name, p in self.predictors.items():
            period = p.period * self.config.sample_interval_s if p.period else None
            self.store.add_prediction(now, name, p.checked, p.accuracy, period)

    def _on_phase(self, ident: bytes, msg: Any) -> None:
        """A rank enters or leaves a phase: lend its cores, or take them back now."""
        self.store.add_phase(time.time(), msg["node"], msg["rank"], msg["phase"], msg["active"])
        reclaimed = self.phases.mark(msg["node"], msg["rank"], msg["phase"], msg["active"],
                                     msg.get("cores") or [])
        node = self.decider.nodes.get(msg["node"])
        if node is None:
            return
        node.sim_bound = self.reported_bound.get(node.name, node.sim_bound) - self.phases.lent(
            node.name)
        if reclaimed and self.decider.sim_running:
            self.preemption.take_back(node, reclaimed, f"rank {msg['rank']} left its "
                                      f"{msg['phase']} phase")
        self.dirty = True

    def _on_started(self, ident: bytes, msg: Any) -> None:
        self.started_at[msg["execution"]] = msg["t"]
        try:
            self.store.transition(msg["execution"], ExecState.RUNNING, pid=msg["pid"],
                                  started_at=msg["t"])
        except TransitionError as exc:
            log.warning("late start report: %s", exc)

    def _on_exited(self, ident: bytes, msg: Any) -> None:
        execution = msg["execution"]
        row = self.store.get(execution)
        usage = {k: msg[k] for k in ("exit_code", "signal", "reason", "cpu_s", "max_rss_bytes",
                                     "wall_s")}
        if row is not None and self.preemption.exited(row, usage):
            self.dirty = True
        elif row is not None and execution in self.decider.active:
            self._record_exit(row, msg)
        self._send(ident, MsgType.ACK, ref=msg["id"])  # only once it is in the database

    def _record_exit(self, row: dict[str, Any], msg: Any) -> None:
        execution = row["id"]
        self.decider.release(execution)
        self.missing.pop(execution, None)
        usage = {k: msg[k] for k in ("exit_code", "signal", "reason", "cpu_s", "max_rss_bytes",
                                     "wall_s")}
        usage.update(self._footprint(msg, row))
        self.finish(row, usage, ended_at=msg["t"])
        self.dirty = True

    def _footprint(self, msg: Any, row: dict[str, Any]) -> dict[str, Any]:
        """Energy (J), its source, gCO2 over the execution's run, and peak threads."""
        extra: dict[str, Any] = {"threads": msg.get("threads")}
        energy = msg.get("energy_j")
        if energy is None:
            return extra
        start = row.get("started_at") or msg["t"] - msg["wall_s"]
        grams = self.energy.footprint(energy, start, msg["t"])["gco2"]
        return {**extra, "energy_j": energy, "gco2": grams, "power_source": msg["power_source"]}

    def finish(self, row: dict[str, Any], usage: dict[str, Any], ended_at: float) -> None:
        execution = row["id"]
        ok = usage["exit_code"] == 0
        state = ExecState.DONE if ok else ExecState.FAILED
        if execution in self.cancelling:
            self.cancelling.discard(execution)
            state = ExecState.CANCELLED
        self.store.transition(execution, state, detail=usage["reason"], ended_at=ended_at,
                              **usage)
        self.profiles.record(row["task"], self.paths.name, execution, Measurement(
            usage["wall_s"], usage["cpu_s"], usage["max_rss_bytes"], threads=usage.get("threads"),
            energy_j=usage.get("energy_j"), exit_code=usage["exit_code"]))
        if state is ExecState.FAILED:
            self._maybe_retry(row, usage["reason"])
        elif state is ExecState.DONE:
            self._chain(row)

    def _chain(self, row: dict[str, Any]) -> None:
        """Submit the tasks that run after each completion of ``row``'s task, same arguments."""
        for name, spec in self.decider.specs.items():
            trigger = spec.get("trigger") or {}
            if trigger.get("kind") == "after" and trigger.get("task") == row["task"]:
                self._queue(new_id(), name, row["args"], origin=f"after {row['id']}")

    def requeue(self, execution: str) -> None:
        """Put an execution the database has back in state queued into the decision queue."""
        self.decider.enqueue(self._pending(self.store.get(execution) or {}))
        self.dirty = True

    def _maybe_retry(self, row: dict[str, Any], reason: str) -> None:
        spec = self.decider.specs.get(row["task"], {})
        attempt = row["attempt"] + 1
        if attempt > spec.get("max_retries", 0) or not self.running:
            return
        not_before = time.time() + spec.get("retry_backoff_s", 1.0) * 2 ** (attempt - 1)
        self.store.transition(row["id"], ExecState.QUEUED, detail=f"retry {attempt}: {reason}",
                              attempt=attempt, not_before=not_before, node=None, cores=None)
        self.decider.enqueue(self._pending(self.store.get(row["id"]) or {}))

    # -- acting -------------------------------------------------------------------------
    def _act(self, placed: list[Placed]) -> None:
        for p in placed:
            node = self.decider.nodes[p.node]
            spec = self._with_limit(self.decider.specs[p.pending.task])
            self.store.transition(p.pending.execution, ExecState.PLACED, node=p.node,
                                  cores=p.cores, detail=f"{p.node}:{p.cores}")
            self._send(node.identity, MsgType.START, execution=p.pending.execution, spec=spec,
                       args=p.pending.args, cores=p.cores, attempt=p.pending.attempt)

    def _with_limit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec sent to the engine, with its hard time limit (declared time x factor)."""
        factor, time_s = self.config.time_limit_factor, spec.get("time_s")
        if not factor or not time_s:
            return spec
        return {**spec, "time_limit_s": time_s * factor}

    def send_command(self, execution: str, mtype: MsgType, **fields: Any) -> None:
        """Send a command about ``execution`` to the agent of the node that runs it."""
        held = self.decider.active.get(execution) or self.preemption.paused.get(execution)
        node = self.decider.nodes.get(held[1]) if held else None
        if node is not None:
            self._send(node.identity, mtype, execution=execution, **fields)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        for execution, since in list(self.missing.items()):
            if now - since > LOST_S and execution in self.decider.active:
                self._lost(execution, "lost: its agent no longer runs it")
        for name, node in list(self.decider.nodes.items()):
            if now - node.last_seen > self.node_stale_s:
                del self.decider.nodes[name]
                for execution in [e for e, (_, n, _) in self.decider.active.items() if n == name]:
                    self._lost(execution, f"lost: node {name} silent")
        if now >= self.next_prediction_record:
            self.next_prediction_record = now + 10.0
            self._record_predictions()
        if self.parent_pid and not pid_alive(self.parent_pid):
            self._abort("the simulation process that started the scheduler is gone")
        if not (self.decider.sim_running or self.decider.pending or self.decider.active
                or self.preemption.paused or self.holds.waiting()):
            self._drained()

    def _lost(self, execution: str, reason: str) -> None:
        """Its agent does not run it: requeue it (a lost execution is not the task's fault),
        up to LOST_RETRIES times beyond its own retries, then record it failed."""
        self.decider.release(execution)
        self.missing.pop(execution, None)
        row = self.store.get(execution)
        if row is None or ExecState(row["state"]).terminal:
            return
        spec = self.decider.specs.get(row["task"], {})
        never_started = row["state"] == ExecState.PLACED.value
        if never_started or row["attempt"] < spec.get("max_retries", 0) + LOST_RETRIES:
            attempt = row["attempt"] + (0 if never_started else 1)
            self.store.transition(execution, ExecState.QUEUED, detail=f"requeued, {reason}",
                                  attempt=attempt, node=None, cores=None, pid=None)
            self.decider.enqueue(self._pending(self.store.get(execution) or {}))
        else:
            self.store.transition(execution, ExecState.FAILED, detail=reason, reason=reason,
                                  ended_at=time.time())
        self.dirty = True

    def _drained(self) -> None:
        self._record_predictions()
        counts = self.store.counts()
        for ident, ref in self.waiters:
            self._send(ident, MsgType.DRAINED, ref=ref, done=counts.get("done", 0),
                       failed=counts.get("failed", 0))
        self._shutdown_agents("queue drained")
        self.running = False

    def _abort(self, reason: str) -> None:
        """The simulation is gone: cancel what is queued, stop what runs, and exit."""
        log.warning("aborting: %s", reason)
        now = time.time()
        for execution in [*self.decider.pending, *self.holds.held]:
            self.store.transition(execution, ExecState.CANCELLED, detail=reason, reason=reason)
        for execution in [*self.decider.active, *self.preemption.paused]:
            self.decider.release(execution)
            with contextlib.suppress(TransitionError):
                self.store.transition(execution, ExecState.CANCELLED, detail=reason,
                                      reason=reason, ended_at=now)
        self.decider.pending.clear()
        self.holds.held.clear()
        self.preemption.paused.clear()
        self._shutdown_agents(reason)
        self.running = False

    def _shutdown_agents(self, reason: str) -> None:
        for node in self.decider.nodes.values():
            self._send(node.identity, MsgType.SHUTDOWN, reason=reason)
        for node_name, pid in self.agents.items():
            self.store.end_component("agent", node_name, pid)

    _handlers = {
        MsgType.DECLARE: _on_declare, MsgType.SUBMIT: _on_submit, MsgType.CANCEL: _on_cancel,
        MsgType.STATUS: _on_status, MsgType.SIM_END: _on_sim_end, MsgType.HELLO: _on_hello,
        MsgType.SAMPLE: _on_sample,
        MsgType.PHASE: _on_phase, MsgType.STARTED: _on_started, MsgType.EXITED: _on_exited,
    }


def _with_allocation(config: Config) -> Config:
    """The config with the allocation's end time from Slurm when it does not set one."""
    if config.alloc_end is not None:
        return config
    try:
        from odop.launch.slurm import allocation
    except ImportError:
        return config
    found = allocation()
    end = getattr(found, "end_time", None)
    return dataclasses.replace(config, alloc_end=end) if end else config


def serve(run_dir: Path, config: Config, *, endpoint: str | None = None,
          parent_pid: int | None = None) -> None:
    """Entry point of ``odop scheduler``: serve the run until it is drained or aborted."""
    paths = RunPaths(run_dir)
    meta = RunStore(paths.db, readonly=True).meta() if paths.db.exists() else {}
    config = _with_allocation(run_config(meta, config))
    service = SchedulerService(paths, config, endpoint=endpoint, parent_pid=parent_pid)
    node = os.environ.get("ODOP_NODE") or os.uname().nodename
    service.store.add_component("scheduler", node, os.getpid(), service.endpoint)
    try:
        service.run()
    finally:
        end = RunStore(paths.db)
        end.end_component("scheduler", node, os.getpid())
        end.close()
