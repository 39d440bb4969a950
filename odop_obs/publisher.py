"""Publishes samples on a ZeroMQ PUB socket: frames [topic, msgpack(sample)]."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import zmq

from odop_obs.schema import topic_for


class Publisher:
    """A PUB socket bound to ``endpoint`` (``ipc://<run>/obs.sock``, ``tcp://*:port``).

    Sending never blocks: when no subscriber keeps up (high-water mark reached) the
    sample is dropped and counted in ``dropped``. CURVE is enabled when
    ``curve_secret`` (a z85 secret key, the server side) is given.
    """

    def __init__(
        self,
        endpoint: str,
        context: zmq.Context[Any] | None = None,
        hwm: int = 100,
        curve_secret: bytes | None = None,
    ) -> None:
        self._ctx = context or zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.PUB)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 0)
        if curve_secret is not None:
            self._sock.curve_secretkey = curve_secret
            self._sock.curve_server = True
        self._sock.bind(endpoint)
        self.endpoint: str = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.sent = 0
        self.dropped = 0
        self._packer = msgpack.Packer()
        self._topics: dict[str, bytes] = {}

    def emit(self, sample: Mapping[str, Any]) -> None:
        """Send one sample to every subscriber of its node's topic."""
        node = sample["node"]
        topic = self._topics.get(node) or self._topics.setdefault(node, topic_for(node))
        try:
            self._sock.send_multipart([topic, self._packer.pack(sample)], zmq.NOBLOCK)
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    def close(self) -> None:
        self._sock.close(linger=0)
