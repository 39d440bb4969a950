"""The client side of the scheduler's socket, used by simulation ranks and the CLI.

Sending never blocks: a message goes into ZeroMQ's queue and the call returns. Requests
that need an answer wait for it with a bound. Submissions are resent until acknowledged
(the scheduler ignores a resent id), so none is lost while the scheduler restarts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq

from odop.errors import ProtocolError
from odop.launch.journal import Journal
from odop.protocol import MsgType, decode, encode, make, transport, validate

log = logging.getLogger("odop.client")
RESEND_S = 1.0


class Client:
    """A DEALER socket to the scheduler, with acknowledgement tracking."""

    def __init__(self, endpoint: str, *, rank: int | None = None,
                 journal: Journal | None = None) -> None:
        self.endpoint, self.rank, self.journal = endpoint, rank, journal
        self.sock = transport.dealer(endpoint)
        self.unacked: dict[str, tuple[float, dict[str, Any]]] = {}
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
        try:
            self.sock.send(encode(msg), zmq.NOBLOCK)
        except zmq.Again:
            log.warning("scheduler unreachable and send queue full; %s kept for resend",
                        mtype.value)
        if track:
            self.unacked[msg["id"]] = (time.monotonic(), msg)
        return msg

    def submit(self, execution: str, task: str, args: dict[str, Any]) -> None:
        """Queue a submission, journal it, and return at once whatever the scheduler does."""
        msg = self.send(MsgType.SUBMIT, track=True, execution=execution, task=task, args=args,
                        rank=self.rank)
        if self.journal is not None and not self.journal.submitted(msg):
            self.unjournalled.add(msg["id"])

    def resend_all(self) -> None:
        """Resend every unacknowledged message now (after the scheduler came back)."""
        for msg_id, (_, msg) in list(self.unacked.items()):
            self.unacked[msg_id] = (0.0, msg)
        self.pump()

    def pump(self, timeout_s: float = 0.0) -> None:
        """Read whatever arrived (waiting up to ``timeout_s`` for the first), resend stale."""
        deadline = time.monotonic() + timeout_s
        while True:
            wait = max(0.0, deadline - time.monotonic())
            if not self.sock.poll(int(wait * 1000)):
                break
            self._receive(self.sock.recv())
            deadline = 0.0
        now = time.monotonic()
        for msg_id, (sent, msg) in list(self.unacked.items()):
            if now - sent > RESEND_S:
                self.unacked[msg_id] = (now, msg)
                try:
                    self.sock.send(encode(msg), zmq.NOBLOCK)
                except zmq.Again:
                    break

    def ping(self) -> None:
        """Ask the scheduler for a sign of life (a status reply), without waiting."""
        self.send(MsgType.STATUS)

    def _receive(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
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
            acked = self.unacked.pop(ref, None)
            if acked is not None and self.journal is not None and acked[1]["type"] == "submit":
                self.journal.acked(ref)
            if ref in self.awaiting:
                self.replies[ref] = dict(msg)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until every tracked message is acknowledged."""
        end = time.monotonic() + timeout_s
        while self.unacked and time.monotonic() < end:
            self.pump(min(0.1, max(0.0, end - time.monotonic())))
        return not self.unacked

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
