"""Sockets: ipc:// as before, tcp:// always CURVE with the run's allow list."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zmq

from odop.errors import OdopError
from odop.protocol import keys, transport


def _roundtrip(server: zmq.Socket, client: zmq.Socket, timeout_ms: int = 3000) -> bytes | None:
    client.send(b"ping")
    if not server.poll(timeout_ms):
        return None
    return server.recv_multipart()[1]


def test_ipc_pair_and_announcement(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/s.sock"
    server = transport.router(endpoint, run_root=tmp_path)
    client = transport.dealer(endpoint)
    try:
        assert _roundtrip(server, client) == b"ping"
        assert transport.announced(tmp_path) == endpoint
        transport.withdraw(tmp_path)
        assert transport.announced(tmp_path) is None
    finally:
        client.close(0)
        server.close(0)


def test_tcp_uses_curve_and_refuses_foreign_keys(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    keys.generate(tmp_path)
    server = transport.router("tcp://127.0.0.1:*", run_root=tmp_path)
    endpoint = transport.announced(tmp_path)
    assert endpoint is not None and endpoint.startswith("tcp://127.0.0.1:")
    assert server.curve_server
    good = transport.dealer(endpoint, run_root=tmp_path)
    rogue_key = tmp_path / "rogue.key_secret"
    keys.write_certificate(rogue_key, *zmq.curve_keypair())
    monkeypatch.setenv(keys.CLIENT_KEY_ENV, str(rogue_key))
    rogue = transport.dealer(endpoint, run_root=tmp_path)
    try:
        assert _roundtrip(server, rogue, 1000) is None
        assert _roundtrip(server, good) == b"ping"
    finally:
        for sock in (good, rogue, server):
            sock.close(0)


def test_tcp_without_keys_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OdopError, match="needs a run's CURVE keys"):
        transport.dealer("tcp://127.0.0.1:5")
    with pytest.raises(keys.CurveKeyError, match="no CURVE keys"):
        transport.router("tcp://127.0.0.1:*", run_root=tmp_path)


def test_public_endpoint_names_this_host() -> None:
    assert transport.public_endpoint("tcp://0.0.0.0:5555") == f"tcp://{os.uname().nodename}:5555"
    assert transport.public_endpoint("tcp://10.0.0.1:5") == "tcp://10.0.0.1:5"
    assert transport.public_endpoint("ipc:///x") == "ipc:///x"
