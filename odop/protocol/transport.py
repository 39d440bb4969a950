"""Sockets: every odop socket is made here, so security and options live in one place.

``ipc://`` endpoints sit in the run folder (0700): the file system is the access control.
``tcp://`` endpoints are always secured with the run's CURVE keys (odop/protocol/keys.py):
the scheduler's ROUTER is a CURVE server whose ZAP handler accepts only the public keys in
``<run>/keys/authorized/``; DEALERs are CURVE clients holding the scheduler's public key.
A process says which run it serves with :func:`use_run` (the CLI and ``odop.start`` do);
the scheduler's bound endpoint is then announced in ``<run>/scheduler.endpoint``, and a
node agent's relay (its ranks' ``ipc://`` socket) in ``<run>/agents/<node>.endpoint``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from typing import Any

import zmq

from odop.errors import OdopError
from odop.protocol import keys as curve
from odop.protocol.codec import MAX_MESSAGE_BYTES

ENDPOINT_FILE = "scheduler.endpoint"
_run: Path | None = None
_auth: Any = None
"""The process's ZAP authenticator thread (zmq.auth.thread), made on the first CURVE server."""
_auth_lock = threading.Lock()
_announced: dict[Path, str] = {}
"""Announcement file -> the endpoint this process wrote there."""


def use_run(run_root: Path | str | None) -> None:
    """Make ``run_root`` the run whose keys secure tcp:// and where binds are announced."""
    global _run
    _run = Path(run_root) if run_root is not None else None


def is_tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


def router(endpoint: str, *, run_root: Path | None = None) -> zmq.Socket:
    """The scheduler's socket: agents and clients connect to it; announced if a run is set."""
    root = run_root or _run
    sock: zmq.Socket = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a restarted agent takes its identity back
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # larger frames: peer disconnected
    if is_tcp(endpoint):
        _curve_server(sock, _keys(root, endpoint))
    sock.bind(endpoint)
    if root is not None:
        announce(root, public_endpoint(sock.getsockopt_string(zmq.LAST_ENDPOINT)))
    return sock


def local_router(endpoint: str) -> zmq.Socket:
    """A node agent's relay socket for its node's ranks: ``ipc://`` only (the run folder's
    permissions guard it), never announced here (the agent does, once it serves)."""
    if not endpoint.startswith("ipc://"):
        raise OdopError(f"a relay endpoint must be ipc:// (node-local), not {endpoint}")
    sock: zmq.Socket = zmq.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 500)  # the last replies (drained) still reach the ranks
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    sock.bind(endpoint)
    return sock


RECONNECT_MS = 20
"""Interval between a dealer's connection attempts while its peer is not there (ms)."""


def dealer(endpoint: str, *, identity: bytes | None = None, linger_ms: int = 0,
           run_root: Path | None = None) -> zmq.Socket:
    """An agent's or a client's socket to the scheduler (a CURVE client over tcp://)."""
    sock: zmq.Socket = zmq.Context.instance().socket(zmq.DEALER)
    if identity is not None:
        sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, linger_ms)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
    # a scheduler starting up (or restarting) is found within 20 ms, not ZeroMQ's 100
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
    if is_tcp(endpoint):
        keys = _keys(run_root or _run, endpoint)
        public, secret = curve.client_pair(keys)
        sock.curve_serverkey = curve.load_public(keys.server_public)
        sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.connect(endpoint)
    return sock


def _keys(root: Path | None, endpoint: str) -> curve.RunKeys:
    if root is None:
        raise OdopError(f"endpoint {endpoint} is tcp:// and needs a run's CURVE keys; "
                        "call transport.use_run(<run folder>) first")
    keys = curve.RunKeys.of(root)
    if not keys.exists():
        raise curve.CurveKeyError(f"run {root} has no CURVE keys under {keys.folder}; "
                                  "they are made when the run is created")
    return keys


def _curve_server(sock: zmq.Socket, keys: curve.RunKeys) -> None:
    global _auth
    domain = str(keys.folder)
    with _auth_lock:
        if _auth is None:
            from zmq.auth.thread import ThreadAuthenticator  # asyncio: only when needed

            _auth = ThreadAuthenticator(zmq.Context.instance())
            _auth.start()
        _auth.configure_curve(domain=domain, location=str(keys.authorized))
    public, secret = curve.load_pair(keys.server_secret)
    sock.zap_domain = domain.encode()
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.curve_server = True


def public_endpoint(endpoint: str) -> str:
    """An endpoint others can connect to: a wildcard tcp host becomes this host's name."""
    if is_tcp(endpoint):
        host, _, port = endpoint[len("tcp://"):].rpartition(":")
        if host in ("0.0.0.0", "*", "[::]", "::"):
            return f"tcp://{socket.gethostname()}:{port}"
    return endpoint


def relay_file(node: str) -> str:
    """Where, under the run folder, the agent of ``node`` announces its relay endpoint."""
    return f"agents/{node}.endpoint"


def announce(run_root: Path, endpoint: str, name: str = ENDPOINT_FILE) -> None:
    """Write ``<run>/<name>`` atomically (one line: the endpoint); the scheduler's by
    default, an agent's relay with ``name=relay_file(node)``."""
    path = Path(run_root) / name
    path.parent.mkdir(mode=0o700, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(endpoint + "\n")
    os.replace(tmp, path)
    _announced[path] = endpoint


def withdraw(run_root: Path, name: str = ENDPOINT_FILE) -> None:
    """Remove the announcement this process made, unless a newer process replaced it."""
    path = Path(run_root) / name
    mine = _announced.pop(path, None)
    if mine is not None and announced(run_root, name) == mine:
        with contextlib.suppress(OSError):
            path.unlink()


def announced(run_root: Path, name: str = ENDPOINT_FILE) -> str | None:
    """The endpoint announced in ``<run>/<name>`` (the scheduler's by default), or None."""
    try:
        return (Path(run_root) / name).read_text().strip() or None
    except OSError:
        return None
