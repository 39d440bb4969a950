"""The client side of the scheduler's socket, used by simulation ranks and the CLI.

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
from typing import Any

import zmq

from odop.errors import ProtocolError
from odop.launch.journal import Journal
from odop.launch.outbox import Outbox
from odop.protocol import MsgType, decode, encode, make, transport, validate

log = logging.getLogger("odop.client")


class Client:
    """A DEALER socket to the scheduler, with acknowledgement tracking."""

    def __init__(self, endpoint: str, *, rank: int | None = None,
                 journal: Journal | None = None) -> None:
        self.endpoint, self.rank, self.journal = endpoint, rank, journal
        self.sock = transport.dealer(endpoint)
        self.outbox = Outbox(self._transmit, journal)
        self.errors: list[str] = []
        self.replies: dict[str, dict[str, Any]] = {}
        self.awaiting: set[str] = set()
        self.heard_at = 0.0
        """When the scheduler last sent anything (time.monotonic())."""
        self.unjournalled: set[str] = set()
        """Submissions no journal could take: lost if the scheduler never confirms them."""

    def close(self) -> None:
        self.sock.close(0)
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
        """Hand one message to ZeroMQ; False when its queue is full (nothing is waited for)."""
        try:
            self.sock.send(encode(msg), zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def submit(self, execution: str, task: str, args: dict[str, Any]) -> None:
        """Journal a submission and queue it; return at once whatever the scheduler does."""
        msg = make(MsgType.SUBMIT, execution=execution, task=task, args=args, rank=self.rank)
        if not self.outbox.add(msg, journal=True):
            self.unjournalled.add(msg["id"])

    def resend_all(self) -> None:
        """Resend every unacknowledged message (the scheduler was restarted)."""
        self.outbox.resend_all()

    def unconfirmed(self) -> tuple[int, int]:
        """Submissions the scheduler has not confirmed: (in the journal, in no journal)."""
        held = [m for m in self.outbox.held.values() if m["type"] == "submit"]
        unwritten = sum(1 for m in held if m["id"] in self.unjournalled)
        return len(held) - unwritten + self.outbox.spilled + self.outbox.unread, unwritten

    def pump(self, timeout_s: float = 0.0) -> None:
        """Read whatever arrived (waiting up to ``timeout_s`` for the first), then send or
        resend a bounded slice of what is due."""
        deadline = time.monotonic() + timeout_s
        while True:
            wait = max(0.0, deadline - time.monotonic())
            if not self.sock.poll(int(wait * 1000)):
                break
            self._receive(self.sock.recv())
            deadline = 0.0
        self.outbox.tend()

    def ping(self) -> None:
        """Ask the scheduler for a sign of life (a status reply), without waiting."""
        self.send(MsgType.STATUS)

    def _receive(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        self.outbox.heard(self.heard_at)
        try:
            mtype, msg = validate(decode(data))
        except ProtocolError as exc:
            log.warning("ignored invalid reply: %s", exc)
            return
        ref = msg.get("ref")
        if mtype is MsgType.ERROR:
            self.errors.append(msg["error"])
            log.warning("scheduler: %s", msg["error"])
        if ref:
            acked = self.outbox.acked(ref)
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
        ref = self.send(mtype, **fields)["id"]
        self.awaiting.add(ref)
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
            self.awaiting.discard(ref)
