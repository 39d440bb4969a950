"""What agents report: their node, samples, phases of the simulation, starts and exits.

Samples drive the node view (prediction, lent cores, shortfall, power cap). Part of
SchedulerService (a mixin: it uses the service's store, decider and policies).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from odop.protocol import MsgType
from odop.scheduler.cluster import Node
from odop.scheduler.parts import ServiceParts
from odop.scheduler.predict import IdlePredictor
from odop.store.executions import TransitionError
from odop.store.states import ExecState

log = logging.getLogger("odop.scheduler")



class AgentReports(ServiceParts):
    """Handlers of agent messages, and the node view they keep up to date."""

    def _on_hello(self, ident: bytes, msg: Any) -> None:
        self._node(ident, msg["node"], msg["cores"])
        self.agents[msg["node"]] = msg["pid"]
        self.store.add_component("agent", msg["node"], msg["pid"])

    def _node(self, ident: bytes, name: str, cores: list[int]) -> Node:
        node = self.decider.nodes.get(name)
        if node is None or node.identity != ident:
            node = Node(name, ident, sorted(int(c) for c in cores))
            node.lend(self.phases.lent(name))
            self.decider.add_node(node)
            self.dirty = True
        return node

    def _on_sample(self, ident: bytes, msg: Any) -> None:
        view = msg["sample"]
        node = self._node(ident, msg["node"], view.get("cores") or [])
        busy_again = node.update(self._predict(node.name, view), msg["sim_alive"])
        if busy_again and self.decider.sim_running:
            self.preemption.take_back(node, busy_again, "the ranks on cores "
                                      f"{sorted(busy_again)} stopped waiting")
        self.preemption.shortfall(node, self.decider.sim_running)
        self._power_cap(node)
        running = set(msg["running"])
        now = time.monotonic()
        for execution in self.held_on(node.name):
            if execution in running:
                self.missing.pop(execution, None)
            else:
                self.missing.setdefault(execution, now)
        if not msg["sim_alive"] and self.decider.sim_running:
            self.sim_gone(node.name)
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

    def _predict(self, name: str, view: dict[str, Any]) -> dict[str, Any]:
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

    def _record_predictions(self) -> None:
        now = time.time()
        for name, p in self.predictors.items():
            period = p.period * self.config.sample_interval_s if p.period else None
            self.store.add_prediction(now, name, p.checked, p.accuracy, period)

    def _on_phase(self, ident: bytes, msg: Any) -> None:
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
        self.dirty = True

    def _on_started(self, ident: bytes, msg: Any) -> None:
        execution = msg["execution"]
        self.started_at[execution] = msg["t"]
        if self.preemption.owns(execution):  # paused before its start was confirmed
            self.store.update(execution, "started (paused)", pid=msg["pid"], started_at=msg["t"])
            return
        try:
            self.store.transition(execution, ExecState.RUNNING, pid=msg["pid"],
                                  started_at=msg["t"])
        except TransitionError as exc:
            log.warning("late start report: %s", exc)

    def _on_exited(self, ident: bytes, msg: Any) -> None:
        execution = msg["execution"]
        row = self.store.get(execution)
        usage = {k: msg.get(k) for k in ("exit_code", "signal", "reason", "cpu_s",
                                         "max_rss_bytes", "wall_s")}
        if row is not None and self.preemption.exited(row, usage):
            self.dirty = True
        elif row is not None and execution in self.decider.active:
            self._record_exit(row, msg)
        self._send(ident, MsgType.ACK, ref=msg["id"])  # only once it is in the database
