"""The scheduler's socket: one ROUTER that agents (identity ``agent:<node>``) and clients
(ranks, the CLI) connect to. Every message is validated on receipt and handed to the
handler of its type; a bad one is refused with an ERROR reply and counted, never fatal.
Sends never block.

Ranks reach it through their node's agent: a ``relay`` carries their messages, each served
as if it came straight from its rank, under a *relayed route* (the agent's identity and the
rank's route at the agent); replies to relayed routes go back to each agent in ``deliver``
messages, one per agent for everything one turn of the loop answers. A ``heartbeat`` is
answered at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import zmq

from odop.errors import ProtocolError
from odop.protocol import MsgType, decode, encode, make, transport, validate
from odop.protocol.messages import CLIENT_TYPES
from odop.scheduler.state import RunState

log = logging.getLogger("odop.scheduler")
BATCH = 1000
"""Most messages served per turn of the loop."""
DELIVER_BYTES = 256 * 1024
"""A ``deliver`` message is closed once its replies reach this size (bytes)."""
RELAYED = b"\xff"
"""First byte of a relayed route (ZeroMQ's own routing ids start with a zero byte)."""
Handler = Callable[[bytes, Any], None]


class Wire:
    """The bound socket, its poller (trigger descriptors too) and the handler table."""

    def __init__(self, endpoint: str, run_root: Path, state: RunState) -> None:
        self.endpoint, self.state = endpoint, state
        self.sock = transport.router(endpoint, run_root=run_root)
        self.poller = zmq.Poller()
        self.poller.register(self.sock, zmq.POLLIN)
        self.handlers: Mapping[MsgType, Handler] = {}
        """Each message type the scheduler accepts, and the handler that serves it."""
        self._fds: dict[int, str] = {}
        self._replies: dict[bytes, list[tuple[bytes, bytes]]] | None = None
        """Replies to relayed routes, by agent, while a turn collects them."""

    def wait(self, timeout_s: float, fds: dict[int, str]) -> set[str]:
        """Serve what arrives within ``timeout_s``; the names of ``fds`` (descriptor ->
        trigger name) that became readable."""
        if fds.keys() != self._fds.keys():  # a watcher came or went: re-register
            for fd in self._fds:
                self.poller.unregister(fd)
            for fd in fds:
                self.poller.register(fd, zmq.POLLIN)
            self._fds = fds
        events = dict(self.poller.poll(int(timeout_s * 1000)))
        if self.sock in events:
            self._drain()
        return {fds[fd] for fd in fds if fd in events}

    def _drain(self) -> None:
        self._replies = {}
        try:
            for _ in range(BATCH):
                try:
                    ident, data = self.sock.recv_multipart(zmq.NOBLOCK)[:2]
                except zmq.Again:
                    return
                except ValueError:
                    self.state.invalid += 1
                    continue
                self.serve(ident, data)
        finally:
            replies, self._replies = self._replies, None
            for agent, items in replies.items():
                self._deliver(agent, items)

    def serve(self, ident: bytes, data: bytes) -> None:
        """Validate one message and hand it to its handler."""
        try:
            mtype, msg = validate(decode(data))
            if ident[:1] == RELAYED and mtype not in CLIENT_TYPES:
                raise ProtocolError(f"a relay carries only client messages, not {mtype.value}")
            if mtype is MsgType.RELAY:
                self._relay(ident, msg)
                return
            if mtype is MsgType.HEARTBEAT:
                self.send(ident, MsgType.HEARTBEAT, ref=msg["id"])
                return
            handler = self.handlers.get(mtype)
            if handler is None:
                raise ProtocolError(f"the scheduler does not accept {mtype.value} messages")
            handler(ident, msg)
        except ProtocolError as exc:
            self.state.invalid += 1
            log.warning("invalid message #%d: %s", self.state.invalid, exc)
            self.send(ident, MsgType.ERROR, ref=None, error=str(exc))
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            self.state.invalid += 1  # well-formed but nonsensical
            log.exception("message refused (#%d)", self.state.invalid)
            self.send(ident, MsgType.ERROR, ref=None, error=f"refused: {exc!r:.200}")

    def _relay(self, agent: bytes, msg: Any) -> None:
        """Serve each rank message an agent relays, under its relayed route."""
        for origin, data in zip(msg["routes"], msg["msgs"], strict=True):
            self.serve(relayed(agent, origin), data)

    def send(self, ident: bytes, mtype: MsgType, **fields: Any) -> None:
        data = encode(make(mtype, **fields))
        if ident[:1] == RELAYED:
            agent, origin = unrelay(ident)
            if self._replies is not None:
                self._replies.setdefault(agent, []).append((origin, data))
            else:
                self._deliver(agent, [(origin, data)])
            return
        try:
            self.sock.send_multipart([ident, data], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("cannot send %s to %r: %s", mtype.value, ident, exc)

    def _deliver(self, agent: bytes, items: list[tuple[bytes, bytes]]) -> None:
        """Replies to ranks behind ``agent``, in ``deliver`` messages of bounded size."""
        start, size = 0, 0
        for i, (_, data) in enumerate(items):
            size += len(data)
            if size >= DELIVER_BYTES or i == len(items) - 1:
                chunk = items[start:i + 1]
                self.send(agent, MsgType.DELIVER, routes=[o for o, _ in chunk],
                          msgs=[d for _, d in chunk])
                start, size = i + 1, 0

    def close(self) -> None:
        self.sock.close()


def relayed(agent: bytes, origin: bytes) -> bytes:
    """The route of a rank behind ``agent`` (a ZeroMQ identity: at most 255 bytes), whose
    route at the agent is ``origin``."""
    return RELAYED + bytes([len(agent)]) + agent + origin


def unrelay(route: bytes) -> tuple[bytes, bytes]:
    """(agent identity, rank's route at the agent) of a relayed route."""
    end = 2 + route[1]
    return route[2:end], route[end:]
