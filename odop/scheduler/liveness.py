"""Who still answers: executions an agent stopped reporting, nodes gone silent, the
scheduler's own stalls, and a drain left with no agent at all.

Liveness is decided by silence, never by pids: an agent that is stopped, wedged or
partitioned is treated as gone once it has been silent ``node_stale_s``; its executions
are requeued (lost), and it is handed work again when it says hello.
"""

from __future__ import annotations

import logging

from odop.scheduler.core import Decider
from odop.scheduler.lifecycle import Lifecycle
from odop.scheduler.state import RunState

log = logging.getLogger("odop.scheduler")
LOST_S = 5.0
"""An execution its agent no longer reports for this long is lost (and requeued)."""
ORPHAN_S = 30.0
"""Once the simulation has ended, how long the drain waits with no agent left before it
ends, leaving what could not run queued (seconds)."""
STALL_S = 2.0
"""A gap between two checks (every 0.5 s) longer than this (seconds) is the scheduler's
own stall (SIGSTOP, swapped out, a wedged file system), not its peers'."""


class Liveness:
    """Checked every half second by the service (``check``)."""

    def __init__(self, decider: Decider, lifecycle: Lifecycle, state: RunState,
                 node_stale_s: float, now: float) -> None:
        self.decider, self.lifecycle, self.state = decider, lifecycle, state
        self.node_stale_s = node_stale_s
        """A node silent this long (seconds) is gone."""
        self._checked: float | None = None
        self._node_seen = now
        """When a node was last known (monotonic s)."""

    def check(self, now: float) -> None:
        """Requeue what silent agents and nodes held (``now``: monotonic seconds)."""
        self._excuse_own_stall(now)
        for execution, since in list(self.state.missing.items()):
            if now - since > LOST_S and self.lifecycle.node_of(execution) is not None:
                self.lifecycle.lost(execution, "lost: its agent no longer runs it")
        for name, node in list(self.decider.nodes.items()):
            if now - node.last_seen > self.node_stale_s:
                self.decider.remove_node(name)
                for execution in self.lifecycle.held_on(name):
                    self.lifecycle.lost(execution, f"lost: node {name} silent")

    def orphaned(self, now: float) -> bool:
        """The simulation has ended and no agent has answered for ORPHAN_S: what is left
        cannot run here; it stays queued (in the account) and the drain is answered."""
        if self.decider.nodes or self.decider.sim_running:
            self._node_seen = now
            return False
        if now - self._node_seen < ORPHAN_S or not self.lifecycle.busy():
            return False
        log.warning("no agent has answered for %.0f s: the drain ends, leaving %d execution(s) "
                    "queued", now - self._node_seen, len(self.decider.pending))
        return True

    def _excuse_own_stall(self, now: float) -> None:
        """After the scheduler's own stall, nodes and executions get their full time to be
        heard from again: their silence over the stall was its own (nothing is requeued
        as lost, and run twice, for it)."""
        gap = 0.0 if self._checked is None else now - self._checked
        self._checked = now
        if gap <= STALL_S:
            return
        log.warning("the scheduler did not run for %.1f s; its peers get their time again", gap)
        for node in self.decider.nodes.values():
            node.last_seen = max(node.last_seen, now)
        for execution in self.state.missing:
            self.state.missing[execution] = now
