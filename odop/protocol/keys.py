"""CURVE keys of one run: generated at run creation, kept in ``<run>/keys/`` (0700).

Layout (ZeroMQ certificate text files, readable by :func:`zmq.auth.load_certificate`)::

    keys/server.key            the scheduler's public key (clients need it)
    keys/server.key_secret     the scheduler's secret key (0600, the scheduler only)
    keys/client.key_secret     the run's client keypair (0600): ranks, agents, the CLI
    keys/authorized/*.key      public keys the scheduler accepts (ZAP allow list)

Multi-node runs need the run folder on a file system every node sees (as Slurm jobs
usually have); the files are private to the user, like the rest of the run folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from odop.errors import OdopError

CLIENT_KEY_ENV = "ODOP_CURVE_KEY"
"""Path of a client certificate (public + secret) to use instead of the run's one."""


class CurveKeyError(OdopError):
    """A run's CURVE keys are missing, unreadable or not private."""


@dataclass(frozen=True)
class RunKeys:
    """Where one run's CURVE certificates live."""

    folder: Path

    @classmethod
    def of(cls, run_root: Path) -> RunKeys:
        return cls(Path(run_root) / "keys")

    @property
    def server_public(self) -> Path:
        return self.folder / "server.key"

    @property
    def server_secret(self) -> Path:
        return self.folder / "server.key_secret"

    @property
    def client_secret(self) -> Path:
        return self.folder / "client.key_secret"

    @property
    def authorized(self) -> Path:
        return self.folder / "authorized"

    def exists(self) -> bool:
        return self.server_secret.exists() and self.client_secret.exists()


def generate(run_root: Path) -> RunKeys:
    """Create the run's keys if absent (idempotent); returns where they are."""
    keys = RunKeys.of(run_root)
    if keys.exists():
        return keys
    keys.authorized.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys.folder, 0o700)
    server_pub, server_sec = zmq.curve_keypair()
    client_pub, client_sec = zmq.curve_keypair()
    write_certificate(keys.server_public, server_pub)
    write_certificate(keys.authorized / "client.key", client_pub)
    write_certificate(keys.client_secret, client_pub, client_sec)
    write_certificate(keys.server_secret, server_pub, server_sec)  # last: marks completion
    return keys


def write_certificate(path: Path, public: bytes, secret: bytes | None = None) -> None:
    """Write a certificate atomically; a file holding a secret is created 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write("#   ZeroMQ CURVE certificate of an odop run\n")
        if secret:
            fh.write("#   secret: keep it private (mode 0600)\n")
        fh.write(f'metadata\ncurve\n    public-key = "{public.decode()}"\n')
        if secret:
            fh.write(f'    secret-key = "{secret.decode()}"\n')
    os.replace(tmp, path)


def load_pair(path: Path) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from a secret certificate that only the user can read."""
    try:
        mode = path.stat().st_mode
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"cannot read CURVE certificate {path}: {exc}") from exc
    if mode & 0o077:
        raise CurveKeyError(f"CURVE secret {path} has mode {oct(mode & 0o777)}; allowed: 0600")
    if secret is None:
        raise CurveKeyError(f"CURVE certificate {path} holds no secret key")
    return public, secret


def load_public(path: Path) -> bytes:
    """The z85 public key of a certificate."""
    try:
        return zmq.auth.load_certificate(path)[0]
    except (OSError, ValueError) as exc:
        raise CurveKeyError(f"cannot read CURVE certificate {path}: {exc}") from exc


def client_pair(keys: RunKeys) -> tuple[bytes, bytes]:
    """This process's client keypair: $ODOP_CURVE_KEY if set, else the run's."""
    override = os.environ.get(CLIENT_KEY_ENV)
    return load_pair(Path(override) if override else keys.client_secret)
