"""The scheduler process: the run's queue, its nodes, and the loop that drives decisions.

It binds a ROUTER socket that agents (DEALER, identity ``agent:<node>``) and clients
(simulation ranks, the CLI) connect to. Every cycle is driven by an event: a submission,
a sample, an exit. Every state change is written to SQLite before it is acted on, so a
scheduler killed at any instant restarts from the database with nothing lost.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from odop.config import Config
from odop.energy.advisor import EnergyPolicy
from odop.memory import trim_heap
from odop.paths import RunPaths
from odop.procs import pid_alive
from odop.protocol import MsgType, new_id
from odop.scheduler.core import Decider, Placed
from odop.scheduler.depends import NOT_DONE, ObservedStore
from odop.scheduler.elastic import Elastic
from odop.scheduler.holds import Holds
from odop.scheduler.lifecycle import Lifecycle
from odop.scheduler.liveness import Liveness
from odop.scheduler.placement import make_placement
from odop.scheduler.preemption import PhaseBook, Preemption
from odop.scheduler.reports import AgentReports
from odop.scheduler.requests import ClientRequests
from odop.scheduler.selection import make_selection
from odop.scheduler.state import RunState
from odop.scheduler.wire import Wire
from odop.store.profiles import ProfileStore
from odop.tasks.triggers.watchset import TriggerSet

log = logging.getLogger("odop.scheduler")


class SchedulerService:
    """Owns one run's database and decides for all its nodes: assembles the parts (the
    decider, the execution lifecycle, preemption, the message handlers) and runs the loop.
    """

    def __init__(self, paths: RunPaths, config: Config, *, endpoint: str | None = None,
                 parent_pid: int | None = None) -> None:
        self.paths, self.config, self.parent_pid = paths, config, parent_pid
        self.state = state = RunState()
        self.store = store = ObservedStore(paths.db)
        self.profiles = ProfileStore(config.home_path / "profiles.db")
        self.decider = decider = Decider(
            make_selection(config.selection), make_placement(config.placement),
            busy_threshold=config.busy_threshold_pct / 100,
            memory_reserve=config.memory_reserve_pct / 100, share_bound=config.share_bound_cores)
        store.listener = decider.depends.changed
        self.endpoint = endpoint or paths.scheduler_endpoint
        self.wire = Wire(self.endpoint, paths.root, state)
        self.terminated = False
        """SIGTERM arrived: the loop aborts at its next turn (within 0.2 s)."""
        self.interrupted = False
        """SIGINT arrived (odop run's second Ctrl-C): stop the tasks, keep the queue."""
        self.triggers = TriggerSet(str(paths.db), started=lambda: store.meta().get("started"),
                                   sim_running=lambda: decider.sim_running)
        self.energy = EnergyPolicy.from_config(config.extra.get("energy", {}),
                                               alloc_end=config.alloc_end)
        self.holds = Holds(self.energy, decider, alloc_end=config.alloc_end)
        self.holds.note = store.note  # deferral decisions, with reasons, in the history
        decider.core_limit = self._core_limit
        self.lifecycle = Lifecycle(store, self.profiles, decider, self.holds, state,
                                   self._command, run=paths.name, footprint=self._grams)
        self.preemption = Preemption(decider, self.lifecycle)
        self.elastic = Elastic(decider, self.lifecycle)
        self.liveness = Liveness(decider, self.lifecycle, state, node_stale_s=max(
            10.0, 5 * config.sample_interval_s), now=time.monotonic())
        self.phases = PhaseBook(config.idle_phases, config.phase_min_lend_s)
        self.clients = ClientRequests(decider, store, self.profiles, self.lifecycle,
                                      self.triggers, self.holds, self.energy, state, self.wire.send,
                                      self._last_look)
        self.agents = AgentReports(
            decider, store, self.lifecycle, self.preemption, self.phases, self.energy, state,
            self.wire.send, self.sim_gone, interval_s=config.sample_interval_s,
            window=max(1, round(config.prediction_window_s / config.sample_interval_s)))
        self.wire.handlers = {
            MsgType.DECLARE: self.clients.on_declare, MsgType.SUBMIT: self.clients.on_submit,
            MsgType.CANCEL: self.clients.on_cancel, MsgType.STATUS: self.clients.on_status,
            MsgType.SIM_END: self.clients.on_sim_end, MsgType.HELLO: self.agents.on_hello,
            MsgType.SAMPLE: self.agents.on_sample, MsgType.PHASE: self.agents.on_phase,
            MsgType.STARTED: self.agents.on_started, MsgType.EXITED: self.agents.on_exited}
        self.next_prediction_record = time.monotonic() + 10.0
        self._load()

    # -- restart ------------------------------------------------------------------------
    def _load(self) -> None:
        """Rebuild the run's tasks, triggers, queue and grants from the database."""
        self.decider.specs.update(self.store.tasks())
        self.decider.depends.load(self.store.in_states(*NOT_DONE))
        self.triggers.update(self.decider.specs)
        meta = self.store.meta()
        self.decider.sim_running = "sim_end" not in meta
        self.state.wrapped = bool(meta.get("wrapped"))
        self.lifecycle.restore()

    # -- loop ---------------------------------------------------------------------------
    def run(self) -> None:
        # the handlers only take note: the parent's death signal can come more than once (as
        # its threads exit one by one), and an abort must never run inside another one
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, self._on_sigint)
        self.store.set_meta("scheduler_started", time.time())
        self.energy.start()
        next_check = time.monotonic()
        while self.state.running:
            self._wait_for_events()
            if self.terminated:
                self._on_terminated()
                break
            if self.interrupted:
                self._interrupt("stopped by the user (Ctrl-C)")
                break
            if self.state.dirty or self._holds_due():
                self._decide()
            if self.state.waiters and self._finished():  # answer odop.stop() at once
                self._drained()
                continue  # the loop ends: no housekeeping turn to drain a second time
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                self._housekeeping()
                trim_heap()  # at most once a minute
        self.triggers.close()
        self.energy.stop()
        self.wire.close()
        self.store.close()
        self.profiles.close()

    def _decide(self) -> None:
        """One scheduling cycle: resume, release holds, place, skip what cannot run."""
        self.state.dirty = False
        self.preemption.resume_paused()
        now = time.time()
        self.holds.apply(now, self.decider.has_free_core())
        self._act(self.decider.cycle(now))
        self.elastic.adjust(now)
        self._skip_doomed()

    def _core_limit(self, capacity: int) -> int:
        """Cores odop may hold of the ``capacity`` it could: fewer while the grid is dirty."""
        return self.energy.concurrency(capacity, now=time.time(),
                                       sim_running=self.decider.sim_running)

    def _grams(self, joules: float, start: float, end: float) -> float:
        return float(self.energy.footprint(joules, start, end)["gco2"])

    def _on_sigterm(self, *_: Any) -> None:
        self.terminated = True

    def _on_sigint(self, *_: Any) -> None:
        self.interrupted = True

    def _on_terminated(self) -> None:
        """SIGTERM: the parent's death signal means the run is over (abort); with the parent
        alive, whoever stopped this scheduler leaves the run to the next one its keeper
        starts, which resumes the queue, the triggers and the running executions from the
        database, exactly as after a SIGKILL (an abort here would cancel them)."""
        if self.parent_pid and pid_alive(self.parent_pid):
            log.warning("stopping on SIGTERM: the queue stays for the next scheduler")
            self.state.running = False
        else:
            self._abort("scheduler received SIGTERM")

    def _interrupt(self, reason: str) -> None:
        """Stop every task and exit, leaving each execution queued in the database."""
        log.warning("interrupted: %s", reason)
        self.lifecycle.stop_all(reason)
        self._shutdown_agents(reason)
        self.state.running = False

    def sim_gone(self, node: str) -> None:
        """A node's agent no longer sees the simulation. Embedded mode: it ended without
        odop.stop(), so abort. Wrapped mode: the launcher's end is odop run's to report
        (SIM_END, after it has reaped the command): wait for it."""
        self.state.wrapped = self.state.wrapped or bool(self.store.meta().get("wrapped"))
        if not self.state.wrapped:
            self._abort(f"simulation on {node} ended without odop.stop()")
        elif not self.state.launcher_gone:
            self.state.launcher_gone = True
            log.info("the wrapped command on %s ended; waiting for odop run's word", node)

    def _holds_due(self) -> bool:
        due = self.holds.next_due()
        return due is not None and due <= time.time()

    # -- events -------------------------------------------------------------------------
    def _wait_for_events(self) -> None:
        """Block until a message, a trigger or a timer needs attention, then serve it."""
        now = time.time()
        timeout = 0.0 if self.state.dirty else self.triggers.timeout_s(now, 0.2)
        ready = self.wire.wait(timeout, self.triggers.fds())
        self._fire_triggers(time.time(), ready)

    def _fire_triggers(self, now: float, ready: set[str]) -> None:
        fired = self.triggers.poll(now, ready)
        for watcher, task, kwargs in fired:
            self.lifecycle.queue(new_id(), task, kwargs, origin=f"{watcher.kind} trigger")
        for watcher in {id(w): w for w, _, _ in fired}.values():
            watcher.commit()

    def _last_look(self) -> None:
        """Every trigger looks at everything it watches once more (the simulation's end:
        writes on other nodes raise no local event, a last file may have no event yet)."""
        for watcher in self.triggers.watchers.values():
            watcher.rescan()
        self._fire_triggers(time.time(), set(self.triggers.watchers))

    def _command(self, node: str, mtype: MsgType, **fields: Any) -> None:
        """Send a command to the agent of ``node`` (if it is known)."""
        found = self.decider.nodes.get(node)
        if found is not None:
            self.wire.send(found.identity, mtype, **fields)

    # -- acting -------------------------------------------------------------------------
    def _act(self, placed: list[Placed]) -> None:
        """Record each placement, then send its start command."""
        for p in placed:
            self.energy.forget(p.pending.execution)  # its deferral decision is spent
            self.lifecycle.place(p)
            grants = [(p.node, p.cores), *p.spans]
            hosts = [{"host": self.decider.nodes[n].host, "cores": c}
                     for n, c in grants] if p.spans else None
            self._command(p.node, MsgType.START, execution=p.pending.execution,
                          spec=self._with_limit(self.decider.specs[p.pending.task]),
                          args=p.pending.args, cores=p.cores, gpus=p.gpus, hosts=hosts,
                          attempt=p.pending.attempt)

    def _with_limit(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The spec sent to the engine: with its hard time limit (declared time x factor),
        and marked ``drain`` once the simulation has ended (nothing left to protect)."""
        factor, time_s = self.config.time_limit_factor, spec.get("time_s")
        extra: dict[str, Any] = {} if self.decider.sim_running else {"drain": True}
        if factor and time_s:
            extra["time_limit_s"] = time_s * factor
        return {**spec, **extra} if extra else spec

    def _housekeeping(self) -> None:
        now = time.monotonic()
        self.liveness.check(now)
        if now >= self.next_prediction_record:
            self.next_prediction_record = now + 10.0
            self.agents.record_predictions()
        if self.parent_pid and not pid_alive(self.parent_pid):
            self._abort("the simulation process that started the scheduler is gone")
        if not self.decider.sim_running:
            self._skip_misfits()
        if self._finished() or self.liveness.orphaned(now):
            self._drained()

    def _skip_misfits(self) -> None:
        """Once the simulation has ended (every node known): skip what no node can run,
        rather than have the drain wait for it forever."""
        for execution, why in self.decider.never_fit().items():
            log.warning("skipping %s: %s", execution, why)
            self.lifecycle.skip(execution, why)

    def _skip_doomed(self) -> None:
        """Skip the queued executions the cycle found depending on one that failed for good
        (odop.scheduler.depends), with the reason."""
        for execution, why in self.decider.depends.take_doomed().items():
            self.lifecycle.skip(execution, why)

    def _finished(self) -> bool:
        """The simulation has ended and nothing is queued, running, paused or held."""
        return not (self.decider.sim_running or self.lifecycle.busy())

    def _drained(self) -> None:
        self.agents.record_predictions()
        counts = self.store.counts()
        for ident, ref in self.state.waiters:
            self.wire.send(ident, MsgType.DRAINED, ref=ref, done=counts.get("done", 0),
                       failed=counts.get("failed", 0))
        self._shutdown_agents("queue drained")
        self.state.running = False

    def _abort(self, reason: str) -> None:
        """The simulation is gone: cancel what is queued, stop what runs, and exit. What
        the triggers match that they had not yet seen is queued first, so that it is
        cancelled with the reason too, listed rather than missing."""
        log.warning("aborting: %s", reason)
        self._last_look()
        self.lifecycle.cancel_all(reason)
        self._shutdown_agents(reason)
        self.state.running = False

    def _shutdown_agents(self, reason: str) -> None:
        for node in self.decider.nodes.values():
            self.wire.send(node.identity, MsgType.SHUTDOWN, reason=reason)
        for name, pid in self.state.agents.items():
            self.store.end_component("agent", name, pid)
