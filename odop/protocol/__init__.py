"""odop's wire protocol: msgpack maps with a version, a type and an id (docs/protocol.md)."""

from odop.protocol.codec import decode, encode
from odop.protocol.messages import VERSION, MsgType, make, new_id, validate

__all__ = ["VERSION", "MsgType", "decode", "encode", "make", "new_id", "validate"]
