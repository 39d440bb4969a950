"""The node's relay: its ranks' socket, and their messages on the agent's one connection.

Ranks connect a DEALER to ``ipc://<run>/agents/<node>.sock``, announced in
``<run>/agents/<node>.endpoint`` once the agent serves it. The relay validates what a rank
sends, answers its ``heartbeat`` at once, and forwards the rest to the scheduler in
``relay`` messages: whatever queued up since the agent's last turn, in order, at most
``RELAY_BYTES`` a message, each with its rank's route. The scheduler's replies come back
in ``deliver`` messages, each reply with the route of the rank it goes to.

The relay keeps nothing: a rank holds every submission (its journal and outbox) until the
scheduler's ack, sent once the submission is in SQLite, reaches it; until then it resends,
through the relay or, when the agent is silent, straight to the scheduler, which ignores an
execution id it already has. Losing the agent, or the scheduler, loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import zmq

from odop.errors import ProtocolError
from odop.paths import RunPaths, ipc_endpoint
from odop.protocol import MsgType, decode, encode, make, transport, validate
from odop.protocol.codec import MAX_MESSAGE_BYTES
from odop.protocol.messages import CLIENT_TYPES

log = logging.getLogger("odop.agent")
TURN_MAX = 1000
"""Most rank messages read per turn of the agent's loop."""
RELAY_BYTES = 256 * 1024
"""A ``relay`` message is closed once its messages reach this size (bytes)."""
ITEM_MAX = MAX_MESSAGE_BYTES - 4096
"""Largest rank message the relay forwards (bytes): a ``relay`` must stay under the
message bound with its envelope."""


def relay_endpoint(paths: RunPaths, node: str) -> str:
    """The ``ipc://`` endpoint of ``node``'s relay (a short stand-in for a deep folder)."""
    return ipc_endpoint(paths.root / "agents" / f"{node}.sock")


class Relay:
    """Ranks' messages to the scheduler through ``upstream(bytes) -> bool`` (the agent's
    socket; False when its queue is full), and the scheduler's replies back to them."""

    def __init__(self, paths: RunPaths, node: str,
                 upstream: Callable[[bytes], bool]) -> None:
        self.paths, self.node, self.upstream = paths, node, upstream
        (paths.root / "agents").mkdir(mode=0o700, exist_ok=True)
        self.endpoint = relay_endpoint(paths, node)
        self.sock = transport.local_router(self.endpoint)
        self.invalid = 0
        """Rank messages refused (undecodable, off the schema, or not a client's)."""
        self.relayed = 0
        """Rank messages handed to the scheduler's socket."""
        self.refused = 0
        """Rank messages the scheduler's socket did not take (its queue was full); their
        ranks resend them."""

    def announce(self) -> None:
        """Tell the node's ranks that the relay serves (``agents/<node>.endpoint``)."""
        transport.announce(self.paths.root, self.endpoint, transport.relay_file(self.node))

    def close(self) -> None:
        transport.withdraw(self.paths.root, transport.relay_file(self.node))
        self.sock.close()

    def drain(self) -> None:
        """Read what the ranks sent (at most ``TURN_MAX``) and forward it, batched."""
        routes: list[bytes] = []
        msgs: list[bytes] = []
        size = 0
        for _ in range(TURN_MAX):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            item = self._accept(frames)
            if item is None:
                continue
            if size + len(item[1]) > RELAY_BYTES and msgs:
                self._forward(routes, msgs)
                routes, msgs, size = [], [], 0
            routes.append(item[0])
            msgs.append(item[1])
            size += len(item[1])
        if msgs:
            self._forward(routes, msgs)

    def _accept(self, frames: list[bytes]) -> tuple[bytes, bytes] | None:
        """(route, message) to forward; a heartbeat is answered, a bad message refused."""
        if len(frames) != 2:
            self.invalid += 1
            return None
        route, data = frames
        try:
            if len(data) > ITEM_MAX:
                raise ProtocolError(f"message of {len(data)} bytes exceeds the {ITEM_MAX} "
                                    "a node's agent relays")
            mtype, msg = validate(decode(data))
            if mtype is MsgType.HEARTBEAT:
                self._reply(route, MsgType.HEARTBEAT, ref=msg["id"])
                return None
            if mtype not in CLIENT_TYPES:
                raise ProtocolError(f"the agent relays only {sorted(t.value for t in CLIENT_TYPES)}"
                                    f" messages, not {mtype.value}")
        except ProtocolError as exc:
            self.invalid += 1
            log.warning("refused a rank's message (%d so far): %s", self.invalid, exc)
            self._reply(route, MsgType.ERROR, ref=None, error=str(exc))
            return None
        return route, data

    def _forward(self, routes: list[bytes], msgs: list[bytes]) -> None:
        batch = encode(make(MsgType.RELAY, node=self.node, routes=routes, msgs=msgs))
        if self.upstream(batch):
            self.relayed += len(msgs)
        else:
            self.refused += len(msgs)

    def deliver(self, msg: Any) -> None:
        """Hand each of the scheduler's replies to its rank (one gone is skipped)."""
        for route, data in zip(msg["routes"], msg["msgs"], strict=True):
            self._send(route, data)

    def _reply(self, route: bytes, mtype: MsgType, **fields: Any) -> None:
        self._send(route, encode(make(mtype, **fields)))

    def _send(self, route: bytes, data: bytes) -> None:
        try:
            self.sock.send_multipart([route, data], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # its queue is full: the rank asks again
            log.debug("cannot reach a rank: %s", exc)
