"""The sample message: one msgpack/JSON map per tick, versioned and validated at the edge.

Layout (docs/observer.md has every field and its unit)::

    {"v": 1, "type": "obs.sample", "id": "<node>:<pid>:<seq>", "seq": int,
     "node": str, "t": float (unix seconds), "dt": float (seconds since previous tick),
     "<section>": ...}   # one key per sampler: system, processes, gpu, power
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from odop_obs.errors import SampleError

SCHEMA_VERSION = 1
SAMPLE_TYPE = "obs.sample"
TOPIC_PREFIX = b"obs.sample."

_REQUIRED: tuple[tuple[str, type | tuple[type, ...]], ...] = (
    ("v", int),
    ("type", str),
    ("id", str),
    ("seq", int),
    ("node", str),
    ("t", (int, float)),
    ("dt", (int, float)),
)


def topic_for(node: str) -> bytes:
    """The PUB topic frame of samples from ``node`` (subscribe to TOPIC_PREFIX for all)."""
    return TOPIC_PREFIX + node.encode()


def header(node: str, pid: int, seq: int, t: float, dt: float) -> dict[str, Any]:
    """The fixed fields of a sample; samplers add their sections to the returned map."""
    return {
        "v": SCHEMA_VERSION,
        "type": SAMPLE_TYPE,
        "id": f"{node}:{pid}:{seq}",
        "seq": seq,
        "node": node,
        "t": t,
        "dt": dt,
    }


def validate_sample(msg: object) -> dict[str, Any]:
    """Return ``msg`` if it is a sample this version understands, else raise SampleError."""
    if not isinstance(msg, Mapping):
        raise SampleError(f"sample must be a map, got {type(msg).__name__}")
    for key, kind in _REQUIRED:
        if key not in msg:
            raise SampleError(f"sample field {key!r} is missing")
        value = msg[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SampleError(f"sample field {key!r} = {value!r} has the wrong type")
    if msg["type"] != SAMPLE_TYPE:
        raise SampleError(f"sample field 'type' = {msg['type']!r}; allowed: {SAMPLE_TYPE!r}")
    if msg["v"] != SCHEMA_VERSION:
        raise SampleError(f"sample field 'v' = {msg['v']!r}; allowed: {SCHEMA_VERSION}")
    return dict(msg)
