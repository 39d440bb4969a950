"""CURVE key files of a run: generated once, private, readable by zmq.auth."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import zmq.auth

from odop.protocol import keys


def test_generate_is_private_and_idempotent(tmp_path: Path) -> None:
    made = keys.generate(tmp_path)
    assert stat.S_IMODE(made.folder.stat().st_mode) == 0o700
    for secret in (made.server_secret, made.client_secret):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    server = keys.load_pair(made.server_secret)
    assert keys.load_public(made.server_public) == server[0]
    client_pub, _ = keys.load_pair(made.client_secret)
    assert zmq.auth.load_certificate(made.authorized / "client.key")[0] == client_pub
    assert keys.generate(tmp_path).server_secret.read_text() == made.server_secret.read_text()


def test_readable_secret_is_refused(tmp_path: Path) -> None:
    made = keys.generate(tmp_path)
    os.chmod(made.client_secret, 0o644)
    with pytest.raises(keys.CurveKeyError, match="allowed: 0600"):
        keys.load_pair(made.client_secret)


def test_public_only_certificate_is_not_a_pair(tmp_path: Path) -> None:
    made = keys.generate(tmp_path)
    os.chmod(made.server_public, 0o600)
    with pytest.raises(keys.CurveKeyError, match="no secret"):
        keys.load_pair(made.server_public)


def test_client_key_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = keys.generate(tmp_path)
    other = tmp_path / "other.key_secret"
    pair = zmq.curve_keypair()
    keys.write_certificate(other, *pair)
    monkeypatch.setenv(keys.CLIENT_KEY_ENV, str(other))
    assert keys.client_pair(made) == pair
