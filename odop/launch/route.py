"""Which way a rank's messages go: through its node's agent, or straight to the scheduler.

A rank whose node has an agent serving its relay (announced in
``<run>/agents/<node>.endpoint``) sends everything there: the scheduler then holds one
connection per node, not one per rank. Where no agent is announced (it is starting, or none
serves the node), the rank goes straight to the scheduler, and looks for an announcement
every ``LOOK_S``; once the agent answers, the rank moves to it and closes its own
connection to the scheduler.

Heartbeats: an agent that has sent nothing for ``PING_S`` gets a ``heartbeat``, which it
answers at once. One that leaves a ping unanswered for ``SILENT_S`` (killed, stopped,
wedged) is *silent*: the rank goes straight to the scheduler, asking the agent again every
``RETRY_S``, and moves back once it answers. Each move tells the caller, which sends again
what awaits an answer (the scheduler ignores what it already has). A rank checks only when
it calls in (``submit``, ``stop``): nothing runs between its calls.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

import zmq

from odop.protocol import MsgType, encode, make, transport

log = logging.getLogger("odop.client")
PING_S = 1.0
"""An agent that has sent nothing for this long gets a heartbeat (seconds)."""
SILENT_S = 5.0
"""An agent that leaves a heartbeat unanswered this long is silent (seconds)."""
RETRY_S = 5.0
"""While the rank goes straight to the scheduler, how often it asks its agent (seconds)."""
LOOK_S = 1.0
"""While no agent is announced, how often the rank looks for one (seconds)."""


class Route:
    """The rank's sockets: to its agent's relay (when announced) and to the scheduler
    (only while the agent is not there or silent). ``find_agent()`` returns the relay's
    announced endpoint, or None; without it, every message goes straight."""

    def __init__(self, scheduler: str,
                 find_agent: Callable[[], str | None] | None = None) -> None:
        self.scheduler, self.find_agent = scheduler, find_agent
        self.agent: zmq.Socket | None = None
        self.direct: zmq.Socket | None = None
        self.via_agent = False
        self.agent_heard = 0.0
        """When the agent last sent anything (monotonic s)."""
        self.unanswered: float | None = None
        """When the first heartbeat the agent has not answered was sent."""
        self._pinged = self._looked = self._left = 0.0
        self.moves = 0
        """Times the rank changed way (to the agent or away from it)."""
        now = time.monotonic()
        if not self._look(now):
            self.direct = transport.dealer(scheduler)

    def sockets(self) -> list[zmq.Socket]:
        return [s for s in (self.agent, self.direct) if s is not None]

    def transmit(self, data: bytes) -> bool:
        """Hand one message to the current way; False when it takes none now."""
        sock = self.agent if self.via_agent else self.direct
        if sock is None:
            return False
        try:
            sock.send(data, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def heard_agent(self, now: float) -> None:
        """The agent sent something (a reply or a heartbeat): it is not silent."""
        self.agent_heard, self.unanswered = now, None

    def tend(self, now: float) -> bool:
        """Heartbeats, and a move where one is due; True when the way changed."""
        if self.agent is None and (now - self._looked < LOOK_S or not self._look(now)):
            return False
        if self.via_agent:
            if self.unanswered is not None and now - self.unanswered > SILENT_S:
                log.warning("odop: the node's agent has not answered for %.0f s; sending to "
                            "the scheduler directly", now - self.unanswered)
                return self._move(to_agent=False, now=now)
            if now - max(self.agent_heard, self._pinged) >= PING_S:
                self._ping(now)
            return False
        if self.agent_heard > self._left:
            return self._move(to_agent=True, now=now)
        if now - self._pinged >= RETRY_S:
            self._ping(now)
        return False

    def close(self) -> None:
        for sock in self.sockets():
            sock.close(0)
        self.agent = self.direct = None

    def _look(self, now: float) -> bool:
        """Connect to the agent's relay if one is announced; True if it is."""
        self._looked = now
        endpoint = self.find_agent() if self.find_agent is not None else None
        if endpoint is None:
            return False
        self.agent = transport.dealer(endpoint)
        self.via_agent = self.direct is None  # at start: at once; later: once it answers
        self._ping(now)
        return True

    def _ping(self, now: float) -> None:
        assert self.agent is not None
        self._pinged = now
        self.unanswered = self.unanswered or now
        with contextlib.suppress(zmq.Again):  # no agent there now: it stays unanswered
            self.agent.send(encode(make(MsgType.HEARTBEAT)), zmq.NOBLOCK)

    def _move(self, *, to_agent: bool, now: float) -> bool:
        self.via_agent = to_agent
        self.moves += 1
        if to_agent:
            self.unanswered = None
            if self.direct is not None:
                self.direct.close(0)
                self.direct = None
        else:
            self._left = now
            self._pinged = now  # the next ask in RETRY_S
            if self.direct is None:
                self.direct = transport.dealer(self.scheduler)
        return True
