"""msgpack encoding with bounded decoding: no pickle ever crosses a socket."""

from __future__ import annotations

from typing import Any

import msgpack

from odop.errors import ProtocolError

MAX_MESSAGE_BYTES = 1024 * 1024
"""Largest message accepted (bytes). Real messages are a few KiB; one byte of msgpack can
become a ~70-byte Python object, so this also bounds a hostile message's memory (~70 MiB)."""
MAX_ITEMS = 100_000
"""Most items in any one array or map of a message."""


def encode(msg: dict[str, Any]) -> bytes:
    """Serialise a message map to msgpack bytes."""
    return msgpack.packb(msg, use_bin_type=True)


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ProtocolError(f"msgpack extension type {code} is not allowed in odop messages")


def decode(data: bytes) -> Any:
    """Deserialise msgpack bytes; malformed, oversized or trailing data is a ProtocolError.

    Only plain values come out: every extension type is refused, and the standard
    timestamp extension (-1) decodes to a float of seconds, never to an object.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=True, ext_hook=_refuse_ext,
                               timestamp=1, max_array_len=MAX_ITEMS, max_map_len=MAX_ITEMS)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise ProtocolError(f"undecodable message: {exc.__class__.__name__}: {exc}") from exc
