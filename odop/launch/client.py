"""The client side of the scheduler's socket, used by simulation ranks and the CLI.

A rank's messages go through its node's agent when one serves the node, else straight to
the scheduler (odop/launch/route.py); replies come back the same way, matched by ``ref``.

Sending never blocks: a message goes into ZeroMQ's queue and the call returns. Requests
that need an answer wait for it with a bound. Submissions are resent until acknowledged
(the scheduler ignores a resent id), so none is lost while the scheduler restarts; the
resending is paced by an :class:`~odop.launch.outbox.Outbox` (a bounded slice per call,
nothing but probes to a silent scheduler, memory bounded by spilling to the journal), so a
``submit`` costs the same whatever the backlog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import zmq

from odop.errors import ProtocolError
from odop.launch.journal import Journal
from odop.launch.outbox import Outbox
from odop.launch.route import Route
from odop.protocol import MsgType, decode, encode, make, validate

log = logging.getLogger("odop.client")


class Unconfirmed(NamedTuple):
    """A rank's submissions the scheduler has not confirmed."""

    held: list[str]
    """Execution ids sent and kept in the journal (the ack may have been lost)."""
    unsent: int
    """Kept only in the journal, never sent (spilled past the memory bound)."""
    unwritten: int
    """In no journal (the writes failed) and not confirmed."""
    refused: int
    """Refused by the scheduler (an ERROR reply)."""


class Client:
    """DEALER sockets to the scheduler, or to the node's agent, with acknowledgement
    tracking. ``find_agent()`` returns the endpoint the node's agent announced (None while
    none does); without it, the client talks to the scheduler alone (the CLI)."""

    def __init__(self, endpoint: str, *, rank: int | None = None,
                 journal: Journal | None = None,
                 find_agent: Callable[[], str | None] | None = None) -> None:
        self.endpoint, self.rank, self.journal = endpoint, rank, journal
        self.route = Route(endpoint, find_agent)
        self._poller: tuple[list[Any], zmq.Poller] | None = None
        self.outbox = Outbox(self._transmit, journal)
        self.errors: list[str] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self.awaiting: dict[str, dict[str, Any]] = {}
        """id -> request awaiting its reply (sent again when the way changes)."""
        self.heard_at = 0.0
        """When the scheduler last sent anything (time.monotonic())."""
        self.refused = 0
        """Submissions the scheduler refused (an ERROR reply): in no record of the run."""
        self.unjournalled: set[str] = set()
        """Submissions no journal could take: lost if the scheduler never confirms them."""

    def close(self) -> None:
        self.route.close()
        if self.journal is not None:
            self.journal.close()

    def send(self, mtype: MsgType, *, track: bool = False, **fields: Any) -> dict[str, Any]:
        """Queue a message without blocking; ``track`` resends it until acknowledged."""
        msg = make(mtype, **fields)
        if track:
            self.outbox.add(msg)
        else:
            self._transmit(msg)
        return msg

    def _transmit(self, msg: dict[str, Any]) -> bool:
        """Hand one message to ZeroMQ; False when it takes none now (nothing is waited for)."""
        return self.route.transmit(encode(msg))

    def submit(self, execution: str, task: str, args: dict[str, Any]) -> None:
        """Journal a submission and queue it; return at once whatever the scheduler does."""
        msg = make(MsgType.SUBMIT, execution=execution, task=task, args=args, rank=self.rank)
        if not self.outbox.add(msg, journal=True):
            self.unjournalled.add(msg["id"])

    def resend_all(self) -> None:
        """Resend every unacknowledged message (the scheduler was restarted)."""
        self.outbox.resend_all()

    def unconfirmed(self) -> Unconfirmed:
        """Submissions the scheduler has not confirmed (see :class:`Unconfirmed`)."""
        held = [m for m in self.outbox.held.values() if m["type"] == "submit"]
        return Unconfirmed(
            held=[m["execution"] for m in held if m["id"] not in self.unjournalled],
            unsent=self.outbox.spilled + self.outbox.unread,
            unwritten=sum(1 for m in held if m["id"] in self.unjournalled),
            refused=self.refused)

    def pump(self, timeout_s: float = 0.0) -> None:
        """Read whatever arrived (waiting up to ``timeout_s`` for the first), then send or
        resend a bounded slice of what is due."""
        deadline = time.monotonic() + timeout_s
        while True:
            wait = max(0.0, deadline - time.monotonic())
            ready = self._poll(wait)
            if not ready:
                break
            for sock in ready:
                self._receive(sock.recv(), via_agent=sock is self.route.agent)
            deadline = 0.0
        if self.route.tend(time.monotonic()):
            self._rerouted()
        self.outbox.tend()

    def _poll(self, timeout_s: float) -> list[Any]:
        """The sockets with something to read, waiting up to ``timeout_s`` for one."""
        socks = self.route.sockets()
        if self._poller is None or self._poller[0] != socks:
            poller = zmq.Poller()
            for sock in socks:
                poller.register(sock, zmq.POLLIN)
            self._poller = (socks, poller)
        return [s for s, _ in self._poller[1].poll(int(timeout_s * 1000))]

    def _rerouted(self) -> None:
        """The way changed: what awaits an answer goes again on the new one."""
        for msg in self.awaiting.values():
            self._transmit(msg)
        self.outbox.resend_all()

    def ping(self) -> None:
        """Ask the scheduler for a sign of life (a status reply), without waiting."""
        self.send(MsgType.STATUS)

    def _receive(self, data: bytes, *, via_agent: bool = False) -> None:
        now = time.monotonic()
        if via_agent:
            self.route.heard_agent(now)
        try:
            mtype, msg = validate(decode(data))
        except ProtocolError as exc:
            log.warning("ignored invalid reply: %s", exc)
            return
        if mtype is MsgType.HEARTBEAT:
            return  # the agent's: the scheduler said nothing
        self.heard_at = now
        self.outbox.heard(now)
        ref = msg.get("ref")
        if mtype is MsgType.ERROR:
            self.errors.append(msg["error"])
            log.warning("scheduler: %s", msg["error"])
        if ref:
            acked = self.outbox.acked(ref)
            if acked is not None and acked["type"] == "submit" and mtype is MsgType.ERROR:
                self.refused += 1  # never recorded: the account says so
            if acked is not None and self.journal is not None and acked["type"] == "submit":
                self.journal.acked(ref)
            if ref in self.awaiting:
                self.replies[ref] = dict(msg)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until every tracked message is acknowledged."""
        end = time.monotonic() + timeout_s
        while self.outbox and time.monotonic() < end:
            self.pump(min(0.1, max(0.0, end - time.monotonic())))
        return not self.outbox

    def request(self, mtype: MsgType, timeout_s: float | None, *, alive: Any = None,
                **fields: Any) -> dict[str, Any] | None:
        """Send and wait for the reply to this message; None on timeout or if ``alive()``
        says the scheduler is gone."""
        msg = self.send(mtype, **fields)
        ref = msg["id"]
        self.awaiting[ref] = msg
        end = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while ref not in self.replies:
                if end is not None and time.monotonic() >= end:
                    return None
                if alive is not None and not alive():
                    return None
                self.pump(0.1)
            return self.replies.pop(ref)
        finally:
            self.awaiting.pop(ref, None)
