from __future__ import annotations

import msgpack
import pytest

from odop.errors import ProtocolError
from odop.protocol import VERSION, MsgType, decode, encode, make, validate
from odop.protocol.messages import SCHEMA


def test_every_type_has_a_schema() -> None:
    assert set(SCHEMA) == set(MsgType)


def test_round_trip() -> None:
    msg = make(MsgType.SUBMIT, execution="e1", task="reduce", args={"path": "/x"}, rank=0)
    mtype, back = validate(decode(encode(msg)))
    assert mtype is MsgType.SUBMIT and back["args"] == {"path": "/x"}


@pytest.mark.parametrize("data, words", [
    (b"\xc1", "undecodable"),
    (msgpack.packb([1, 2]), "must be a map"),
    (msgpack.packb({"v": 99, "type": "submit", "id": "x"}), "version"),
    (msgpack.packb({"v": VERSION, "type": "nope", "id": "x"}), "unknown message type"),
    (msgpack.packb({"v": VERSION, "type": "ack", "id": ""}), "'id'"),
    (msgpack.packb({"v": VERSION, "type": "ack", "id": "x"}), "missing field 'ref'"),
    (msgpack.packb({"v": VERSION, "type": "ack", "id": "x", "ref": 3}), "'ref'"),
    (msgpack.packb({"v": VERSION, "type": "phase", "id": "x", "node": "n", "rank": True,
                    "phase": "io", "active": True}), "'rank'"),
])
def test_invalid_messages_name_the_problem(data: bytes, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        validate(decode(data))


def test_optional_fields_may_be_absent() -> None:
    validate(make(MsgType.SUBMIT, execution="e", task="t", args={}))


def test_no_pickle_crosses_the_codec() -> None:
    with pytest.raises(TypeError):
        encode({"v": VERSION, "obj": object()})


def test_a_sample_view_is_checked_field_by_field() -> None:
    """The agent's node view (NodeView) is validated where it is received: a known key
    of the wrong type is refused, naming the key; the view a real agent builds passes."""
    from odop.engine.agent import node_view
    from odop.protocol.messages import MsgType, make, validate

    base = {"node": "n", "running": [], "sim_alive": True}
    view = node_view({"system": {"cpu": {"util": [0.5, 0.0]}}}, [0, 1])
    validate(make(MsgType.SAMPLE, sample=view, **base))
    with pytest.raises(ProtocolError, match="sample: view: field 'util'"):
        validate(make(MsgType.SAMPLE, sample={**view, "util": "busy"}, **base))


def test_a_relay_with_unpaired_routes_is_refused_whole() -> None:
    from odop.protocol.messages import MsgType, make, validate

    validate(make(MsgType.RELAY, node="n", routes=[b"r"], msgs=[b"m"]))
    with pytest.raises(ProtocolError, match="1 routes for 2 messages"):
        validate(make(MsgType.RELAY, node="n", routes=[b"r"], msgs=[b"m", b"m"]))
