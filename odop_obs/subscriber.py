"""Receives samples from one or more observers' PUB sockets, validated on receipt."""

from __future__ import annotations

from typing import Any

import msgpack
import zmq

from odop_obs.errors import SampleError
from odop_obs.schema import TOPIC_PREFIX, topic_for, validate_sample


class Subscriber:
    """A SUB socket connected to observer endpoints.

    ``node`` restricts to one node's samples; by default all are received. A frame that
    is not a valid sample is dropped and counted in ``invalid``, never raised.
    ``curve`` = (server public, client public, client secret) z85 keys for a
    publisher that uses CURVE.
    """

    def __init__(
        self,
        endpoints: str | list[str],
        node: str | None = None,
        context: zmq.Context[Any] | None = None,
        curve: tuple[bytes, bytes, bytes] | None = None,
    ) -> None:
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            server_public, public, secret = curve
            self._sock.curve_serverkey = server_public
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
        self._sock.setsockopt(zmq.SUBSCRIBE, topic_for(node) if node else TOPIC_PREFIX)
        for endpoint in [endpoints] if isinstance(endpoints, str) else endpoints:
            self._sock.connect(endpoint)
        self.invalid = 0

    @property
    def socket(self) -> zmq.Socket[Any]:
        """The SUB socket, to register with a zmq.Poller alongside other sockets."""
        return self._sock

    def recv(self, timeout_s: float | None = None) -> dict[str, Any] | None:
        """The next valid sample, or None when none arrives within ``timeout_s`` seconds."""
        timeout_ms = None if timeout_s is None else int(timeout_s * 1000)
        while self._sock.poll(timeout_ms):
            sample = self.decode(self._sock.recv_multipart(zmq.NOBLOCK))
            if sample is not None:
                return sample
        return None

    def decode(self, frames: list[bytes]) -> dict[str, Any] | None:
        """A sample from its [topic, payload] frames, or None (counted) when invalid."""
        try:
            if len(frames) != 2:
                raise SampleError(f"expected 2 frames, got {len(frames)}")
            return validate_sample(msgpack.unpackb(frames[1], raw=False))
        except (SampleError, ValueError, msgpack.UnpackException):
            self.invalid += 1
            return None

    def close(self) -> None:
        self._sock.close(linger=0)
