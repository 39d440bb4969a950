"""What agents report: their node, samples, phases of the simulation, starts and exits.

Samples drive the node view (prediction, lent cores, shortfall, power cap). Each handler
receives its collaborators at construction; replies go through the ``send`` it is given.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from odop.energy.advisor import EnergyPolicy
from odop.protocol import MsgType
from odop.protocol.messages import NodeView
from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider
from odop.scheduler.lifecycle import Lifecycle
from odop.scheduler.predict import IdlePredictor
from odop.scheduler.preemption import PhaseBook, Preemption
from odop.scheduler.requests import Send
from odop.scheduler.state import RunState
from odop.store.executions import RunStore


class AgentReports:
    """Handlers of agent messages, and the node view and predictions they keep."""

    def __init__(self, decider: Decider, store: RunStore, lifecycle: Lifecycle,
                 preemption: Preemption, phases: PhaseBook, energy: EnergyPolicy,
                 state: RunState, send: Send, sim_gone: Callable[[str], None], *,
                 window: int, interval_s: float) -> None:
        self.decider, self.store, self.lifecycle = decider, store, lifecycle
        self.preemption, self.phases, self.energy, self.state = preemption, phases, energy, \
            state
        self.send, self.sim_gone = send, sim_gone
        self.window, self.interval_s = window, interval_s
        """Samples ahead an unbound simulation's cores must stay idle; seconds a sample."""
        self.predictors: dict[str, IdlePredictor] = {}
        self.clock_offsets: dict[bytes, float] = {}
        """Each agent's wall clock minus this scheduler's (s), from its latest sample: node
        clocks drift, and an execution's times are recorded on this scheduler's clock."""

    def on_hello(self, ident: bytes, msg: Any) -> None:
        self._node(ident, msg["node"], msg["cores"])
        self.state.agents[msg["node"]] = msg["pid"]
        self.store.add_component("agent", msg["node"], msg["pid"])

    def _node(self, ident: bytes, name: str, cores: list[int]) -> Node:
        node = self.decider.nodes.get(name)
        if node is None or node.identity != ident:
            node = Node(name, ident, sorted(int(c) for c in cores))
            node.lend(self.phases.lent(name))
            self.decider.add_node(node)
            self.state.dirty = True
        return node

    def on_sample(self, ident: bytes, msg: Any) -> None:
        view = msg["sample"]
        if isinstance(view.get("t"), (int, float)):
            self.clock_offsets[ident] = view["t"] - time.time()
        node = self._node(ident, msg["node"], view.get("cores") or [])
        busy_again = node.update(self._predict(node.name, view), msg["sim_alive"])
        if busy_again and self.decider.sim_running:
            self.preemption.take_back(node, busy_again, "the ranks on cores "
                                      f"{sorted(busy_again)} stopped waiting")
        self.preemption.shortfall(node, self.decider.sim_running)
        self._power_cap(node)
        self._note_running(node.name, set(msg["running"]))
        if not msg["sim_alive"] and self.decider.sim_running:
            self.sim_gone(node.name)
        self.state.dirty = True

    def _note_running(self, node: str, running: set[str]) -> None:
        """Which executions placed on ``node`` its agent no longer reports (since when)."""
        now = time.monotonic()
        for execution in self.lifecycle.held_on(node):
            if execution in running:
                self.state.missing.pop(execution, None)
            else:
                self.state.missing.setdefault(execution, now)

    def _power_cap(self, node: Node) -> None:
        """Keep the node under its power cap: pause the lowest-priority tasks first."""
        if self.energy.settings.cap_for(node.name) is None:
            return
        running = [{"id": e, "priority": self.decider.specs.get(t, {}).get("priority", 0),
                    "stoppable": True,
                    "started_at": self.state.started_at.get(e, time.time()), "paused": False}
                   for e, (t, n, _) in self.decider.active.items() if n == node.name]
        running += [{"id": e, "priority": 0, "stoppable": True, "started_at": 0.0,
                     "paused": True} for e in self.preemption.capped]
        pause, resume = self.energy.power_cap(node.name, node.power_w, running, now=time.time())
        for execution in pause:
            self.preemption.preempt(execution, f"node {node.name} over its power cap",
                                    policy="pause", capped=True)
        self.preemption.capped -= set(resume)
        self.state.dirty = self.state.dirty or bool(resume)

    def _predict(self, name: str, view: NodeView) -> NodeView:
        """Learn the node's utilisation; for unbound ranks, the view a decision sees holds
        each core's highest utilisation expected within the prediction window."""
        util = view.get("util") or []
        predictor = self.predictors.get(name)
        if predictor is None or predictor.buf.shape[1] != len(util):
            predictor = self.predictors[name] = IdlePredictor(
                len(util), threshold=self.decider.busy_threshold)
        predictor.observe(util)
        if view.get("sim_bound") or not util:
            return view
        return {**view, "util": predictor.expected(self.window).tolist()}

    def _ours(self, ident: bytes, t: float) -> float:
        """An agent's time ``t`` (unix s on its clock) on this scheduler's clock."""
        return t - self.clock_offsets.get(ident, 0.0)

    def record_predictions(self) -> None:
        """How well each node's idle prediction did, into the run's database."""
        now = time.time()
        for name, p in self.predictors.items():
            period = p.period * self.interval_s if p.period else None
            self.store.add_prediction(now, name, p.checked, p.accuracy, period)

    def on_phase(self, ident: bytes, msg: Any) -> None:
        """A rank enters or leaves a phase: lend its cores, or take them back now."""
        self.store.add_phase(time.time(), msg["node"], msg["rank"], msg["phase"], msg["active"])
        reclaimed = self.phases.mark(msg["node"], msg["rank"], msg["phase"], msg["active"],
                                     msg.get("cores") or [], now=time.monotonic())
        node = self.decider.nodes.get(msg["node"])
        if node is None:
            return
        node.lend(self.phases.lent(node.name))
        if reclaimed and self.decider.sim_running:
            self.preemption.take_back(node, reclaimed, f"rank {msg['rank']} left its "
                                      f"{msg['phase']} phase")
        self.state.dirty = True

    def on_started(self, ident: bytes, msg: Any) -> None:
        self.lifecycle.started(msg["execution"], msg["pid"], self._ours(ident, msg["t"]))

    def on_exited(self, ident: bytes, msg: Any) -> None:
        self.lifecycle.exited(msg["execution"], {**msg, "t": self._ours(ident, msg["t"])})
        self.send(ident, MsgType.ACK, ref=msg["id"])  # only once it is in the database
