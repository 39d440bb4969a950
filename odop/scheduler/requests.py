"""What clients ask of the scheduler: declarations, submissions, cancels, status, the end.

Clients are the simulation's ranks and the ``odop`` CLI. Part of SchedulerService (a mixin:
it uses the service's store, decider, holds and socket).
"""

from __future__ import annotations

import time
from typing import Any

from odop.errors import SpecError
from odop.protocol import MsgType
from odop.scheduler.parts import ServiceParts
from odop.store.states import ExecState
from odop.tasks.spec import checked


class ClientRequests(ServiceParts):
    """Handlers of client messages; each replies on the client's own route."""

    def _on_declare(self, ident: bytes, msg: Any) -> None:
        specs, errors = {}, []
        for data in msg["tasks"]:
            try:
                specs[checked(data).name] = data
            except (SpecError, TypeError, ValueError) as exc:
                errors.append(str(exc))
        if errors:
            self.invalid += len(errors)
            self._send(ident, MsgType.ERROR, ref=None, error="; ".join(errors)[:2000])
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
                "energy": self.energy.status(time.time()),
                "transactions": self.store.transactions}
        self._send(ident, MsgType.REPLY, ref=msg["id"], body=body)

    def _on_sim_end(self, ident: bytes, msg: Any) -> None:
        if self.decider.sim_running:
            self.decider.sim_running = False
            self.store.set_meta("sim_end", time.time())
            for watcher in self.triggers.watchers.values():
                watcher.rescan()  # every file, not only those its events name
            self._fire_triggers(time.time(), set(self.triggers.watchers))  # last files in
        self.waiters.append((ident, msg["id"]))
        self.dirty = True
