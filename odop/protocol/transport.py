"""Sockets: every odop socket is made here, so security and options live in one place.

``ipc://`` endpoints sit in the run folder (0700); ``tcp://`` endpoints must be secured with
CURVE keys generated per run (see odop/protocol/keys.py and docs/security.md).
"""

from __future__ import annotations

import zmq


def router(endpoint: str) -> zmq.Socket:
    """The scheduler's socket: agents and clients connect to it."""
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.bind(endpoint)
    return sock


def dealer(endpoint: str, *, identity: bytes | None = None, linger_ms: int = 0) -> zmq.Socket:
    """An agent's or a client's socket to the scheduler."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, linger_ms)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.connect(endpoint)
    return sock
