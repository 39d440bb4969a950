"""The scheduler's socket: one ROUTER that agents (identity ``agent:<node>``) and clients
(ranks, the CLI) connect to. Every message is validated on receipt and handed to the
handler of its type; a bad one is refused with an ERROR reply and counted, never fatal.
Sends never block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import zmq

from odop.errors import ProtocolError
from odop.protocol import MsgType, decode, encode, make, transport, validate
from odop.scheduler.state import RunState

log = logging.getLogger("odop.scheduler")
BATCH = 1000
"""Most messages served per turn of the loop."""
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
        for _ in range(BATCH):
            try:
                ident, data = self.sock.recv_multipart(zmq.NOBLOCK)[:2]
            except zmq.Again:
                return
            except ValueError:
                self.state.invalid += 1
                continue
            self.serve(ident, data)

    def serve(self, ident: bytes, data: bytes) -> None:
        """Validate one message and hand it to its handler."""
        try:
            mtype, msg = validate(decode(data))
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

    def send(self, ident: bytes, mtype: MsgType, **fields: Any) -> None:
        try:
            self.sock.send_multipart([ident, encode(make(mtype, **fields))], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("cannot send %s to %r: %s", mtype.value, ident, exc)

    def close(self) -> None:
        self.sock.close()
