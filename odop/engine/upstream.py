"""The agent's one connection to the scheduler: sends that never block, exit reports resent
until acknowledged, and heartbeats.

A scheduler that has sent nothing for ``PING_S`` gets a ``heartbeat``, which it answers at
once. One that has sent nothing for ``SILENT_S`` is *silent* (stopped, wedged, partitioned,
or not started yet): tracked messages are no longer resent into it, only the oldest once
every ``PROBE_S``, so that a scheduler that comes back is not met by a storm; its first
word ends the silence. (The scheduler's side: a node whose samples stop for
``node_stale_s`` is gone, odop/scheduler/liveness.py.)
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from odop.protocol import MsgType, encode, make

log = logging.getLogger("odop.agent")
RESEND_S = 1.0
"""A tracked message left unacknowledged this long is sent again (seconds)."""
PING_S = 2.0
"""A scheduler that has sent nothing for this long gets a heartbeat (seconds)."""
SILENT_S = 5.0
"""A scheduler that has sent nothing for this long is silent (seconds)."""
PROBE_S = 2.0
"""Time between the messages a silent scheduler still gets, one each (seconds)."""


class Upstream:
    """The agent's DEALER ``sock`` to the scheduler, and what it owes or awaits there."""

    def __init__(self, sock: zmq.Socket) -> None:
        self.sock = sock
        self.unacked: dict[str, tuple[float, dict[str, Any]]] = {}
        """id -> (when last sent, message), for each message resent until acknowledged."""
        self.heard_at = self._pinged = self._probed = time.monotonic()
        """When the scheduler last sent anything, was last pinged, last probed."""
        self._silent = False

    def send(self, mtype: MsgType, *, track: bool = False, **fields: Any) -> dict[str, Any]:
        """Queue one message; ``track``: resend it until acknowledged."""
        msg = make(mtype, **fields)
        if not self.transmit(encode(msg)):
            log.warning("scheduler queue full; %s dropped", mtype.value)
        if track:
            self.unacked[msg["id"]] = (time.monotonic(), msg)
        return msg

    def transmit(self, data: bytes) -> bool:
        """One encoded message, without waiting; False when the queue is full."""
        try:
            self.sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def heard(self) -> None:
        """The scheduler sent something: it is not silent."""
        self.heard_at = time.monotonic()
        if self._silent:
            self._silent = False
            log.warning("the scheduler answers again")

    def acked(self, ref: str) -> None:
        self.unacked.pop(ref, None)

    def silent(self, now: float) -> bool:
        """True when the scheduler has sent nothing for over ``SILENT_S`` seconds."""
        return now - self.heard_at > SILENT_S

    def tend(self, now: float) -> None:
        """Ping a quiet scheduler; resend what is due (a silent one: one probe)."""
        if now - max(self.heard_at, self._pinged) >= PING_S:
            self._pinged = now
            self.send(MsgType.HEARTBEAT)
        due = [(m, msg) for m, (sent, msg) in self.unacked.items() if now - sent > RESEND_S]
        if self.silent(now):
            if not self._silent:
                self._silent = True
                log.warning("the scheduler has not answered for %.0f s: nothing is resent "
                            "to it but a probe every %.0f s", now - self.heard_at, PROBE_S)
            if not due or now - self._probed < PROBE_S:
                return
            self._probed, due = now, due[:1]
        for msg_id, msg in due:
            self.unacked[msg_id] = (now, msg)
            self.transmit(encode(msg))
