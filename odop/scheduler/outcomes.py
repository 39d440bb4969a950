"""What happens when an execution ends: its record, profile, retries, chained tasks,
and executions lost with their node. Part of SchedulerService (a mixin).
"""

from __future__ import annotations

import time
from typing import Any

from odop.protocol import new_id
from odop.scheduler.parts import ServiceParts
from odop.store.profiles import Measurement
from odop.store.states import ExecState

LOST_RETRIES = 3
"""Requeues of lost executions (node or agent gone) on top of the task's own retries."""



class Outcomes(ServiceParts):
    """Ends of executions: done, failed (and retried), cancelled, lost (and requeued)."""

    def _record_exit(self, row: dict[str, Any], msg: Any) -> None:
        execution = row["id"]
        self.decider.release(execution)
        self.started_at.pop(execution, None)
        self.missing.pop(execution, None)
        usage = {k: msg.get(k) for k in ("exit_code", "signal", "reason", "cpu_s",
                                         "max_rss_bytes", "wall_s", "output_cut_bytes")}
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

    def _skip_doomed(self) -> None:
        """Skip the queued executions the cycle found depending on one that failed for good
        (odop.scheduler.depends), with the reason."""
        for execution, why in self.decider.depends.take_doomed().items():
            if self.decider.pending.pop(execution, None) is not None:
                self.store.transition(execution, ExecState.SKIPPED, detail=why, reason=why)
                self.dirty = True  # what depends on it is decided at the next cycle

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

    def _lost(self, execution: str, reason: str) -> None:
        """Its agent does not run it: requeue it (a lost execution is not the task's fault),
        up to LOST_RETRIES times beyond its own retries, then record it failed."""
        self.decider.release(execution)
        self.preemption.forget(execution)
        self.missing.pop(execution, None)
        self.started_at.pop(execution, None)
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
