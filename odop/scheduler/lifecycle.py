"""One owner of an execution's life in the scheduler: queue, place, start, pause, resume,
requeue, end, forget, and where it is.

This is the only code that writes an execution's state to the run store *and* updates the
decider (queue, grants), the energy holds and the paused set together, so the two never
disagree (the pattern of a data store that owns acquire and release). The policies that
decide *when* (odop.scheduler.preemption, the service's cycle and housekeeping) call it;
the commands it sends to a node's agent go through the ``command`` function it is given.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from odop.protocol import MsgType, new_id
from odop.scheduler.core import Decider, Placed
from odop.scheduler.holds import Holds
from odop.scheduler.selection import Pending
from odop.scheduler.state import RunState
from odop.store.executions import RunStore, TransitionError
from odop.store.profiles import Measurement, ProfileStore
from odop.store.states import USER_CANCEL, ExecState

LOST_RETRIES = 3
"""Requeues of lost executions (node or agent gone) on top of the task's own retries."""
EXIT_FIELDS = ("exit_code", "signal", "reason", "cpu_s", "max_rss_bytes", "wall_s",
               "output_cut_bytes")
"""What an agent's exit report carries into the execution's record."""
Command = Callable[..., None]
"""``command(node, mtype, **fields)``: send a command to the agent of ``node``."""


class Lifecycle:
    """Executions from their submission to their end, in the store and in memory."""

    def __init__(self, store: RunStore, profiles: ProfileStore, decider: Decider,
                 holds: Holds, state: RunState, command: Command, *, run: str,
                 footprint: Callable[[float, float, float], float]) -> None:
        self.store, self.profiles, self.decider, self.holds = store, profiles, decider, holds
        self.state, self._command, self.run = state, command, run
        self._footprint = footprint
        """(joules, start, end) -> grams of CO2 over that time."""
        self.paused: dict[str, tuple[str, str, int]] = {}
        """execution -> (task, node, cores it needs), for executions paused by odop."""
        self.requeueing: set[str] = set()
        """Executions told to stop so that they can be queued again (preemption)."""
        self.on_forget: list[Callable[[str], None]] = []
        """Told of each execution forgotten (ended, lost, requeued): policies that keep
        sets of executions drop it there."""

    def restore(self) -> None:
        """Rebuild the queue, the grants and the paused set from the store (a restart):
        what was placed, running or paused is awaited from its agent (``missing``)."""
        now = time.monotonic()
        for row in self.store.in_states(ExecState.QUEUED):
            self.decider.enqueue(self.pending(row))
        for row in self.store.in_states(ExecState.PLACED, ExecState.RUNNING):
            self.decider.activate(row["id"], row["task"], row["node"] or "", row["cores"])
            self.decider.hold_gpus(row["id"], row["node"] or "", row["gpus"])
            self.decider.hold_spans(row["id"], [(n, c) for n, c in row["spans"]])
            self.state.missing[row["id"]] = now
        for row in self.store.in_states(ExecState.PAUSED):  # paused: no cores, its GPUs
            self.decider.hold_gpus(row["id"], row["node"] or "", row["gpus"])
            self.paused[row["id"]] = (row["task"], row["node"] or "", max(1, len(row["cores"])))
            self.state.missing[row["id"]] = now

    # -- where ------------------------------------------------------------------------
    def node_of(self, execution: str) -> str | None:
        """The node an execution holds cores on or is paused on; None when it is neither."""
        held = self.decider.active.get(execution) or self.paused.get(execution)
        return held[1] if held else None

    def held_on(self, node: str) -> list[str]:
        """Executions running or paused on ``node``."""
        return [e for e, (_, n, _) in [*self.decider.active.items(), *self.paused.items()]
                if n == node]

    def busy(self) -> bool:
        """Something is queued, held by the energy policy, running or paused."""
        return bool(self.decider.pending or self.decider.active or self.paused
                    or self.holds.waiting())

    def command(self, execution: str, mtype: MsgType, **fields: Any) -> None:
        """Send a command about ``execution`` to the agent of the node that runs it."""
        node = self.node_of(execution)
        if node is not None:
            self._command(node, mtype, execution=execution, **fields)

    # -- queue ------------------------------------------------------------------------
    def pending(self, row: dict[str, Any]) -> Pending:
        """The decision queue's view of a queued execution, with its expected needs."""
        estimate = self.profiles.estimate(row["task"])
        return Pending(row["id"], row["task"], row["args"], row["submitted_at"],
                       priority=row["priority"], deadline=row["deadline"],
                       not_before=row["not_before"], attempt=row["attempt"],
                       expected_s=estimate.duration_s, expected_bytes=estimate.memory_bytes)

    def queue(self, execution: str, task: str, args: dict[str, Any], origin: str) -> bool:
        """Record a new execution and put it in the decision queue; False when it is
        known already (a resent submission)."""
        spec = self.decider.specs[task]
        now = time.time()
        deadline = now + spec["deadline_s"] if spec.get("deadline_s") else None
        if not self.store.add(execution, task, args, origin=origin, now=now, deadline=deadline,
                              priority=spec.get("priority", 0)):
            return False
        self._enqueue(execution)
        return True

    def requeue(self, execution: str, detail: str, **fields: Any) -> None:
        """Back to the queue (a retry, a lost or preempted execution): its grant released,
        its record queued with ``fields`` (attempt, not_before), in the decision queue."""
        self.forget(execution)
        self.store.transition(execution, ExecState.QUEUED, detail=detail, node=None,
                              cores=None, pid=None, **fields)
        self._enqueue(execution)

    def _enqueue(self, execution: str) -> None:
        self.decider.enqueue(self.pending(self.store.get(execution) or {}))
        self.state.dirty = True

    def forget(self, execution: str) -> None:
        """Drop every in-memory trace of an execution (its grant, GPUs included)."""
        self.decider.release(execution)
        self.paused.pop(execution, None)
        self.requeueing.discard(execution)
        self.state.forget(execution)
        for hook in self.on_forget:
            hook(execution)

    # -- run --------------------------------------------------------------------------
    def place(self, p: Placed) -> None:
        """Record a placement (the service then sends its start command)."""
        grants = [(p.node, p.cores), *p.spans]
        gpus = f" gpus {p.gpus}" if p.gpus else ""
        self.store.transition(p.pending.execution, ExecState.PLACED, node=p.node,
                              cores=p.cores, gpus=p.gpus, spans=p.spans,
                              detail=" ".join(f"{n}:{c}" for n, c in grants) + gpus)

    def started(self, execution: str, pid: int, t: float) -> None:
        """The agent started it (it may have been paused meanwhile)."""
        self.state.started_at[execution] = t
        if execution in self.paused:
            self.store.update(execution, "started (paused)", pid=pid, started_at=t)
            return
        with contextlib.suppress(TransitionError):  # a late report of an execution gone
            self.store.transition(execution, ExecState.RUNNING, pid=pid, started_at=t)

    def pause(self, execution: str, reason: str) -> None:
        """Stop it where it runs (SIGSTOP) and give its cores back; it keeps its GPUs."""
        task, node, cores = self.decider.active[execution]
        self.store.transition(execution, ExecState.PAUSED, detail=reason)  # may be just placed
        self.command(execution, MsgType.PAUSE)  # after its START: the agent runs, stops it
        self.decider.release(execution, keep_gpus=True)
        self.paused[execution] = (task, node, len(cores))

    def resume(self, execution: str, grant: list[int]) -> None:
        """Run a paused execution again, on ``grant`` of its node."""
        task, node, _ = self.paused.pop(execution)
        self.decider.activate(execution, task, node, grant)
        self.command(execution, MsgType.REPIN, cores=grant)
        self.command(execution, MsgType.RESUME)
        self.store.transition(execution, ExecState.RUNNING, detail=f"resumed on {grant}",
                              cores=grant)

    def repin(self, execution: str, cores: list[int], reason: str) -> None:
        """Move a running execution to other cores of its node, without stopping it."""
        task, node, _ = self.decider.active[execution]
        self.decider.release(execution, keep_gpus=True)
        self.decider.activate(execution, task, node, cores)
        self.command(execution, MsgType.REPIN, cores=cores)
        self.store.update(execution, f"repinned to {cores}: {reason}", cores=cores)

    def stop_to_requeue(self, execution: str, reason: str) -> None:
        """Stop it (TERM, then KILL after the grace) to queue it again once it exits."""
        self.requeueing.add(execution)
        self.command(execution, MsgType.KILL, reason=f"preempted: {reason}")

    # -- end --------------------------------------------------------------------------
    def exited(self, execution: str, msg: dict[str, Any]) -> None:
        """An agent reports an exit: requeue what was preempted for it, else record it."""
        row = self.store.get(execution)
        if row is None or (execution not in self.decider.active
                           and execution not in self.paused):
            return  # a resent report of an exit already recorded
        if execution in self.requeueing:
            self.requeue(execution, "requeued after preemption", not_before=time.time())
            return
        usage = {k: msg.get(k) for k in EXIT_FIELDS}
        running = execution in self.decider.active  # else paused: it used nothing lately
        if running:
            usage.update(self._energy(msg, row))
        self.forget(execution)
        self.finish(row, usage, ended_at=msg["t"] if running else time.time())

    def _energy(self, msg: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        """Energy (J), its source, gCO2 over the execution's run, and peak threads."""
        extra: dict[str, Any] = {"threads": msg.get("threads")}
        energy = msg.get("energy_j")
        if energy is None:
            return extra
        start = row.get("started_at") or msg["t"] - msg["wall_s"]
        return {**extra, "energy_j": energy, "gco2": self._footprint(energy, start, msg["t"]),
                "power_source": msg["power_source"]}

    def finish(self, row: dict[str, Any], usage: dict[str, Any], ended_at: float) -> None:
        """Record its end (done, failed or cancelled) and its measured use; then retry it or
        run what follows it."""
        execution = row["id"]
        state = ExecState.DONE if usage["exit_code"] == 0 else ExecState.FAILED
        if execution in self.state.cancelling:
            self.state.cancelling.discard(execution)
            state = ExecState.CANCELLED
        self.store.transition(execution, state, detail=usage["reason"], ended_at=ended_at,
                              **usage)
        self.profiles.record(row["task"], self.run, execution, Measurement(
            usage["wall_s"], usage["cpu_s"], usage["max_rss_bytes"], threads=usage.get("threads"),
            energy_j=usage.get("energy_j"), exit_code=usage["exit_code"]))
        if state is ExecState.FAILED:
            self._retry(row, usage["reason"])
        elif state is ExecState.DONE:
            self._chain(row)
        self.state.dirty = True

    def _retry(self, row: dict[str, Any], reason: str) -> None:
        spec = self.decider.specs.get(row["task"], {})
        attempt = row["attempt"] + 1
        if attempt > spec.get("max_retries", 0) or not self.state.running:
            return
        not_before = time.time() + spec.get("retry_backoff_s", 1.0) * 2 ** (attempt - 1)
        self.requeue(row["id"], f"retry {attempt}: {reason}", attempt=attempt,
                     not_before=not_before)

    def _chain(self, row: dict[str, Any]) -> None:
        """Submit the tasks that run after each completion of ``row``'s task, same arguments."""
        for name, spec in self.decider.specs.items():
            trigger = spec.get("trigger") or {}
            if trigger.get("kind") == "after" and trigger.get("task") == row["task"]:
                self.queue(new_id(), name, row["args"], origin=f"after {row['id']}")

    def lost(self, execution: str, reason: str) -> None:
        """Its agent does not run it: requeue it (a lost execution is not the task's fault),
        up to LOST_RETRIES times beyond its own retries, then record it failed."""
        self.forget(execution)
        row = self.store.get(execution)
        if row is None or ExecState(row["state"]).terminal:
            return
        if execution in self.state.cancelling:  # a user cancelled it: not run again
            self.state.cancelling.discard(execution)
            self.store.transition(execution, ExecState.CANCELLED, detail=reason,
                                  reason=f"{USER_CANCEL}; {reason}", ended_at=time.time())
            return
        spec = self.decider.specs.get(row["task"], {})
        never_started = row["state"] == ExecState.PLACED.value
        if never_started or row["attempt"] < spec.get("max_retries", 0) + LOST_RETRIES:
            attempt = row["attempt"] + (0 if never_started else 1)
            self.requeue(execution, f"requeued, {reason}", attempt=attempt)
        else:
            self.store.transition(execution, ExecState.FAILED, detail=reason, reason=reason,
                                  ended_at=time.time())
            self.state.dirty = True

    def skip(self, execution: str, why: str) -> None:
        """Not run, by decision (it can never run, or what it depends on failed)."""
        if self.decider.pending.pop(execution, None) is not None:
            self.holds.drop(execution)  # what the energy policy knew of it
            self.store.transition(execution, ExecState.SKIPPED, detail=why, reason=why)
            self.state.dirty = True

    def cancel(self, execution: str, reason: str) -> bool:
        """Withdraw a queued or held execution at once, or have a running or paused one
        killed (recorded cancelled when its exit comes); False when it is neither."""
        held = self.holds.drop(execution)  # and what the energy policy knew of it
        if execution in self.decider.pending or held:
            self.decider.pending.pop(execution, None)
            self.store.transition(execution, ExecState.CANCELLED, detail=reason, reason=reason)
            return True
        if execution in self.decider.active or execution in self.paused:
            self.state.cancelling.add(execution)
            self.command(execution, MsgType.KILL, reason=reason)
            return True
        return False

    def cancel_all(self, reason: str) -> None:
        """The simulation is gone: every execution not ended is cancelled with ``reason``."""
        now = time.time()
        for execution in [*self.decider.pending, *self.holds.held]:
            self.store.transition(execution, ExecState.CANCELLED, detail=reason, reason=reason)
        for execution in [*self.decider.active, *self.paused]:
            self.decider.release(execution)
            with contextlib.suppress(TransitionError):
                self.store.transition(execution, ExecState.CANCELLED, detail=reason,
                                      reason=reason, ended_at=now)
        self.decider.pending.clear()
        self.holds.held.clear()
        self.paused.clear()

    def stop_all(self, reason: str) -> None:
        """Stop every task and leave each execution queued in the store, nothing cancelled
        (a later scheduler or ``odop export`` takes them)."""
        for execution in [*self.decider.active, *self.paused]:
            self.command(execution, MsgType.KILL, reason=reason)
            with contextlib.suppress(TransitionError):
                self.requeue(execution, f"requeued: {reason}")
