"""The node agent: the engine plus the observer, talking to the scheduler over ZeroMQ.

One per node. It samples the node every ``interval`` seconds (each sample drives a
scheduling cycle), executes start/pause/resume/repin/kill commands, reports every exit with
its usage until the scheduler acknowledges it, relays its node's ranks' messages on its one
connection to the scheduler (odop/engine/relay.py; heartbeats and silence:
odop/engine/upstream.py), and exits — taking its tasks with it — when the simulation it
serves is gone, when told to shut down, or on SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import psutil
import zmq

from odop.engine.allow import AllowList
from odop.engine.engine import OUTPUT_MAX_BYTES, Engine, Exit
from odop.engine.relay import Relay
from odop.engine.rundelay import RunDelay
from odop.engine.scripts import ScriptBook, profiles_of
from odop.engine.spawn import SpawnError
from odop.engine.upstream import Upstream
from odop.engine.usage import TaskUsage, UsageMeter
from odop.errors import ProtocolError
from odop.launch.discover import claim_agent, read_ranks, step_ranks
from odop.paths import RunPaths
from odop.procs import pid_alive
from odop.protocol import MsgType, decode, transport, validate
from odop.protocol.messages import NodeView

FIRST_GAP_S = 0.25
"""Seconds between an agent's first sample and its second (then ``interval_s``)."""
log = logging.getLogger("odop.agent")
HOST = os.uname().nodename
"""This node's host name, as a launcher reaches it (a node id may differ)."""


class Agent:
    """Serves one node of one run until the simulation ends or the scheduler says so."""

    def __init__(self, paths: RunPaths, node: str, *, sim_pids: Sequence[int] = (),
                 sim_root: int | None = None, interval_s: float = 1.0,
                 endpoint: str | None = None, grace_s: float = 5.0,
                 cores: Sequence[int] | None = None, record: bool = True,
                 memory_bound: str = "auto", output_max_bytes: int = OUTPUT_MAX_BYTES) -> None:
        # first: the fork server's start-up (its imports) then overlaps the agent's own
        self.engine = Engine(paths.root, grace_s=grace_s, memory_bound=memory_bound,
                             output_max_bytes=output_max_bytes,
                             scripts=ScriptBook(profiles_of(paths)))
        from odop_obs import Observer, Recorder

        self.paths, self.node, self.interval_s = paths, node, interval_s
        self.sim_pids = list(sim_pids)
        self.sim_root = sim_root
        """A launcher (wrapped mode): its descendants are the simulation's ranks."""
        self._discovered: set[int] = set()
        self._next_discovery = 0.0
        self.cores = sorted(cores if cores is not None else os.sched_getaffinity(0))
        sinks = [Recorder(paths.samples, node)] if record else []
        self.observer = Observer.standard(sinks, node=node, interval_s=interval_s)
        for pid in self.sim_pids:
            self._watch(pid)
        self.sock = transport.dealer(endpoint or paths.scheduler_endpoint,
                                     identity=f"agent:{node}".encode(), linger_ms=500,
                                     run_root=paths.root)
        self.up = Upstream(self.sock)
        self.relay = Relay(paths, node, self.up.transmit)
        self.meter = UsageMeter()
        self.run_delay = RunDelay()
        self.allow = AllowList(paths.db)
        self.task_pids: dict[str, int] = {}
        self.invalid = 0
        self.running = True
        self._ready = False
        self.ticks = 0
        self._warmed = False
        self._promoted = False
        self.exit_reason = ""

    def _watch(self, pid: int) -> None:
        try:
            # the rank alone: its children include odop's own processes and tasks
            self.observer.processes.watch(pid, role="sim")  # type: ignore[union-attr]
        except Exception as exc:  # the observer must never stop the agent
            log.warning("cannot observe simulation pid %d: %s", pid, exc)

    # -- main loop ----------------------------------------------------------------------
    def run(self) -> str:
        """Serve until done; returns why the agent stopped."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, lambda *_: self._finish("SIGTERM"))
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(wake_r, zmq.POLLIN)
        poller.register(self.relay.sock, zmq.POLLIN)
        self.up.send(MsgType.HELLO, node=self.node, cores=self.cores, pid=os.getpid(),
                     sim_pids=self.sim_pids or ([self.sim_root] if self.sim_root else []))
        self.relay.announce()
        next_tick = time.monotonic()
        engine_fd: int | None = None
        while self.running:
            engine_fd = _follow_fd(poller, engine_fd, self.engine.fileno())
            timeout = max(0.0, next_tick - time.monotonic())
            for item, _ in poller.poll(int(min(timeout, 0.25) * 1000)):
                if item is self.sock:
                    self._drain_socket()
                elif item is self.relay.sock:
                    self.relay.drain()
                elif item in (wake_r, wake_r.fileno()):  # pyzmq may hand back the fd number
                    _drain_fd(wake_r)
            self._report(self.engine.reap())
            self.engine.enforce()
            self.up.tend(time.monotonic())
            if time.monotonic() >= next_tick:
                # the first sample sees the ranks over a moment only: the second follows
                # soon, so that what they use is known (and their waiting cores shared) early
                next_tick += self.interval_s if self.ticks else min(self.interval_s, FIRST_GAP_S)
                self._tick()
            if not self._ready and self.engine.warmed_up():
                self._ready = True  # sampled once (just above) and can fork tasks
                claim_agent(self.paths, self.node, os.getpid(), ready=True)
        running, t0 = len(self.engine.tasks), time.monotonic()
        self._report(self.engine.stop_all(self.exit_reason))
        self.engine.close()
        if running:
            log.warning("%s: stopped %d task(s) in %.2f s", self.exit_reason, running,
                        time.monotonic() - t0)
        self.observer.close()
        self.relay.close()
        self.sock.close()
        return self.exit_reason

    def _warm_declared(self) -> None:
        """Until the run's Python tasks are declared, look for them at each sample, then
        have the fork server probe their modules: the first tasks fork warm too."""
        if self._warmed or not self.engine.warmed_up():
            return
        targets = self.allow.python_targets()
        if targets:
            self.engine.warm(targets)
            self._warmed = True

    def _finish(self, reason: str) -> None:
        self.running = False
        self.exit_reason = self.exit_reason or reason

    def _tick(self) -> None:
        self.ticks += 1
        self._discover_ranks()
        sample = self.observer.tick()
        self.meter.add(sample)
        alive = self._sim_alive()
        view = node_view(sample, self.cores, {p.pid for p in self.engine.tasks.values()})
        if has_spare_core(view):  # warming then costs the ranks nothing
            self._warm_declared()
        view["sim_expected"] = bool(self.sim_pids or self.sim_root or self._discovered)
        view["sim_wait"] = self.run_delay.sample(self.sim_pids or self._discovered)
        self.up.send(MsgType.SAMPLE, node=self.node, sample=view,
                     running=sorted(self.engine.tasks), sim_alive=alive)
        if not alive and not self._promoted:  # the drain: no rank left to yield to
            self.engine.promote()
            self._promoted = True
        if self.sim_pids and not alive:
            self._finish("simulation gone")

    def _sim_alive(self) -> bool:
        if self.sim_root is not None:
            return pid_alive(self.sim_root)
        ranks = self.sim_pids or self._discovered
        return not ranks or any(pid_alive(p) for p in ranks)

    def _discover_ranks(self) -> None:
        """Watch the simulation's ranks as they appear: the launcher's descendants (wrapped
        mode), or the ranks registered in ``nodes/<node>.json`` (agent started by hand)."""
        now = time.monotonic()
        if self.sim_pids or now < self._next_discovery:
            return
        self._next_discovery = now + (1.0 if len(self._discovered) < 2 else 5.0)
        for pid in [*self._rank_pids(), *step_ranks()]:  # srun's ranks: slurmstepd's
            if pid not in self._discovered:
                self._discovered.add(pid)
                self._watch(pid)

    def _rank_pids(self) -> list[int]:
        if self.sim_root is not None:
            try:
                return [c.pid for c in psutil.Process(self.sim_root).children(recursive=True)]
            except psutil.Error:
                return []
        ranks = read_ranks(self.paths, self.node)
        return [int(r["pid"]) for r in ranks if isinstance(r, dict) and str(r.get("pid")).isdigit()]

    # -- messages -----------------------------------------------------------------------
    def _drain_socket(self) -> None:
        while True:
            try:
                data = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.up.heard()
            try:
                mtype, msg = validate(decode(data))
                self._handle(mtype, msg)
            except ProtocolError as exc:
                self.invalid += 1
                log.warning("dropped invalid message (%d so far): %s", self.invalid, exc)
            except (TypeError, ValueError, KeyError, AttributeError, IndexError):
                self.invalid += 1  # well-formed but nonsensical: dropped, never fatal
                log.exception("dropped a message it could not act on (%d so far)", self.invalid)

    def _handle(self, mtype: MsgType, msg: Any) -> None:
        if mtype is MsgType.ACK:
            self.up.acked(msg["ref"])
        elif mtype is MsgType.DELIVER:
            self.relay.deliver(msg)
        elif mtype is MsgType.HEARTBEAT:
            pass  # the scheduler's answer to a ping: heard (above)
        elif mtype is MsgType.START:
            self._start(msg)
        elif mtype is MsgType.SHUTDOWN:
            self._finish(msg["reason"])
        elif mtype in (MsgType.PAUSE, MsgType.RESUME, MsgType.REPIN, MsgType.KILL):
            self._control(mtype, msg)
        else:
            self.invalid += 1
            log.warning("agent does not handle %s messages", mtype.value)

    def _start(self, msg: Any) -> None:
        execution = msg["execution"]
        if execution in self.engine.tasks:
            return  # a resent start: already running
        refusal = self.allow.refusal(msg["spec"])
        if refusal is not None:
            log.warning("%s", refusal)
            self._report([Exit(execution, None, None, f"could not start: {refusal}", 0.0, 0, 0.0)])
            return
        try:
            proc = self.engine.start(execution, msg["spec"], msg["args"], msg["cores"],
                                     gpus=msg.get("gpus") or [], hosts=msg.get("hosts") or [],
                                     attempt=msg["attempt"])
        except (SpawnError, OSError, KeyError, ValueError, TypeError, IndexError) as exc:
            self._report([Exit(execution, None, None, f"could not start: {exc}", 0.0, 0, 0.0)])
            return
        self._follow_task(execution, proc.pid)
        self.up.send(MsgType.STARTED, execution=execution, pid=proc.pid, cores=proc.cores,
                   t=time.time())

    def _follow_task(self, execution: str, pid: int) -> None:
        self.task_pids[execution] = pid
        self.meter.start(pid)
        try:
            self.observer.processes.watch(  # type: ignore[union-attr]
                pid, role="task", label=execution, tree=True)
        except Exception as exc:  # exited already, or the observer failed: no energy figure
            log.debug("cannot observe task %s: %s", execution, exc)

    def _unfollow_task(self, execution: str) -> TaskUsage:
        pid = self.task_pids.pop(execution, None)
        if pid is None:
            return TaskUsage()
        with contextlib.suppress(Exception):
            self.observer.processes.unwatch(pid)  # type: ignore[union-attr]
        return self.meter.stop(pid)

    def _control(self, mtype: MsgType, msg: Any) -> None:
        proc = self.engine.tasks.get(msg["execution"])
        if proc is None:
            return
        if mtype is MsgType.PAUSE:
            proc.pause()
        elif mtype is MsgType.RESUME:
            proc.resume()
        elif mtype is MsgType.REPIN:
            proc.repin([int(c) for c in msg["cores"]])
        else:
            proc.stop(msg["reason"])

    def _report(self, exits: list[Exit]) -> None:
        for e in exits:
            usage = self._unfollow_task(e.execution)
            energy = usage.energy_j(e.cpu_s, self.meter.w_per_core)
            self.up.send(MsgType.EXITED, track=True, execution=e.execution,
                         exit_code=e.exit_code, signal=e.signal, reason=e.reason,
                         cpu_s=e.cpu_s, max_rss_bytes=e.max_rss_bytes, wall_s=e.wall_s,
                         t=time.time(), energy_j=energy, power_source=self.meter.source or None,
                         threads=usage.threads or None,
                         output_cut_bytes=e.output_cut_bytes or None)


def node_view(sample: dict[str, Any], cores: list[int],
              task_groups: Collection[int] = ()) -> NodeView:
    """The part of an observer sample the scheduler decides on (utilisation as 0..1; the
    schema is odop.protocol.messages.NodeView); ``task_groups`` are the process groups of
    odop's running tasks."""
    cpu = sample.get("system", {}).get("cpu", {})
    mem = sample.get("system", {}).get("mem", {})
    procs = sample.get("processes", {})
    sim = [p for p in procs.get("watched", []) if p.get("role") == "sim"]
    use = bound_use(sim, len(cores))
    power = sample.get("power", {})
    return {
        "t": sample.get("t", time.time()),
        "host": HOST,
        "cores": cores,
        "util": cpu.get("util", []),
        "sim_bound": sorted(use),
        "sim_use": [round(use[c], 4) for c in sorted(use)],
        "sim_cpu": sum(p.get("cpu", 0.0) for p in sim),
        "sim_n": len(sim),
        "power_w": power.get("watts", {}).get("total"),
        "power_source": ",".join(sorted(set(power.get("sources", {}).values()))),
        "mem_total": mem.get("total"),
        "mem_available": mem.get("available"),
        "gpus": gpu_view(sample.get("gpus") or [], task_groups),
    }


def gpu_view(devices: list[dict[str, Any]],
             task_groups: Collection[int]) -> list[dict[str, Any]]:
    """Each GPU's index, utilisation (0..1), memory (bytes), and whether a process other
    than odop's tasks (a rank, another job) holds a context on it: such a GPU is never
    offered, however idle it looks between kernels."""
    return [{"index": int(d["index"]), "util": float(d.get("util") or 0.0),
             "mem_used": int(d.get("mem_used") or 0), "mem_total": int(d.get("mem_total") or 0),
             "foreign": any(_group(p.get("pid")) not in task_groups
                            for p in d.get("procs") or [])}
            for d in devices if isinstance(d.get("index"), int)]


def _group(pid: Any) -> int | None:
    try:
        return os.getpgid(int(pid))
    except (OSError, TypeError, ValueError):  # gone, or in another pid namespace
        return None


def has_spare_core(view: NodeView) -> bool:
    """True when the ranks leave a core idle: one no rank is bound to, or, for unbound
    ranks, more than half a core's worth of CPU unused."""
    cores = len(view["cores"])
    if view["sim_bound"]:
        return len(view["sim_bound"]) < cores
    return float(view["sim_cpu"]) < cores - 0.5


def bound_use(sim: list[dict[str, Any]], n_cores: int) -> dict[int, float]:
    """Bound core -> cores' worth of CPU its ranks used there over the last sample (a rank
    bound to k cores counts 1/k of its use on each). A rank is bound when its own mask is
    narrower than the node: one rank per core binds every core, though together they
    cover the node."""
    use: dict[int, float] = {}
    for p in sim:
        mask = p.get("affinity", [])
        if 0 < len(mask) < n_cores:
            share = float(p.get("cpu", 0.0)) / len(mask)
            for c in mask:
                use[c] = use.get(c, 0.0) + share
    return use


def _follow_fd(poller: zmq.Poller, old: int | None, new: int | None) -> int | None:
    """Keep the poller on the engine's current descriptor (its fork server may restart);
    exits it reports are then collected at once."""
    if new != old:
        if old is not None:
            with contextlib.suppress(KeyError):
                poller.unregister(old)
        if new is not None:
            poller.register(new, zmq.POLLIN)
    return new


def _drain_fd(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def serve(run_dir: Path, node: str, **kwargs: Any) -> str:
    """Entry point of ``odop agent``: serve the run's scheduler until done."""
    return Agent(RunPaths(run_dir), node, **kwargs).run()
