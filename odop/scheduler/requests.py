"""What clients ask of the scheduler: declarations, submissions, cancels, status, the end.

Clients are the simulation's ranks and the ``odop`` CLI. Each handler replies on the
client's own route through the ``send`` function it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from odop.energy.advisor import EnergyPolicy
from odop.errors import SpecError
from odop.protocol import MsgType
from odop.scheduler.core import Decider
from odop.scheduler.holds import Holds
from odop.scheduler.lifecycle import Lifecycle
from odop.scheduler.state import RunState
from odop.store.executions import RunStore
from odop.store.profiles import ProfileStore
from odop.store.states import USER_CANCEL
from odop.tasks.spec import checked
from odop.tasks.triggers.watchset import TriggerSet

Send = Callable[..., None]
"""``send(route, mtype, **fields)``: one message to one peer, never blocking."""


class ClientRequests:
    """Handlers of client messages."""

    def __init__(self, decider: Decider, store: RunStore, profiles: ProfileStore,
                 lifecycle: Lifecycle, triggers: TriggerSet, holds: Holds,
                 energy: EnergyPolicy, state: RunState, send: Send,
                 last_look: Callable[[], None]) -> None:
        self.decider, self.store, self.profiles, self.lifecycle = decider, store, profiles, \
            lifecycle
        self.triggers, self.holds, self.energy, self.state = triggers, holds, energy, state
        self.send, self.last_look = send, last_look

    def on_declare(self, ident: bytes, msg: Any) -> None:
        specs, errors = {}, []
        for data in msg["tasks"]:
            try:
                specs[checked(data).name] = data
            except (SpecError, TypeError, ValueError) as exc:
                errors.append(str(exc))
        if errors:
            self.state.invalid += len(errors)
            self.send(ident, MsgType.ERROR, ref=None, error="; ".join(errors)[:2000])
        new = {k: v for k, v in specs.items() if self.decider.specs.get(k) != v}
        if new:
            self.decider.specs.update(new)
            self.store.put_tasks(new)
            for name, spec in new.items():
                self.profiles.declare(name, spec)
            self.triggers.update(new)
        self.send(ident, MsgType.ACK, ref=msg["id"])

    def on_submit(self, ident: bytes, msg: Any) -> None:
        origin = f"rank {msg['rank']}" if msg.get("rank") is not None else "client"
        if msg["task"] not in self.decider.specs:
            self.send(ident, MsgType.ERROR, ref=msg["id"], error=f"unknown task "
                      f"{msg['task']!r}; known: {sorted(self.decider.specs)}")
            return
        self.lifecycle.queue(msg["execution"], msg["task"], msg["args"], origin)
        self.send(ident, MsgType.ACK, ref=msg["id"])  # only once it is in the database

    def on_cancel(self, ident: bytes, msg: Any) -> None:
        execution = msg["execution"]
        if self.store.get(execution) is None:
            self.send(ident, MsgType.ERROR, ref=msg["id"], error=f"no execution {execution}")
            return
        self.lifecycle.cancel(execution, USER_CANCEL)
        self.send(ident, MsgType.ACK, ref=msg["id"])

    def on_status(self, ident: bytes, msg: Any) -> None:
        nodes = {n.name: {"cores": n.cores, "granted": sorted(n.granted),
                          "free": n.free(sim_running=self.decider.sim_running,
                                        threshold=self.decider.busy_threshold),
                          "power_w": n.power_w} for n in self.decider.nodes.values()}
        body = {"counts": self.store.counts(), "nodes": nodes, "invalid": self.state.invalid,
                "sim_running": self.decider.sim_running, "held": len(self.holds.held),
                "energy": self.energy.status(time.time()),
                "transactions": self.store.transactions}
        self.send(ident, MsgType.REPLY, ref=msg["id"], body=body)

    def on_sim_end(self, ident: bytes, msg: Any) -> None:
        """The simulation ended: every trigger looks once more, then the queue drains; the
        client is answered once it has."""
        if self.decider.sim_running:
            self.decider.sim_running = False
            self.store.set_meta("sim_end", time.time())
            self.last_look()
        self.state.waiters.append((ident, msg["id"]))
        self.state.dirty = True
