"""Fuzzing the message decoder and validator: only ProtocolError may escape, quickly, in
bounded memory. ``ODOP_FUZZ_EXAMPLES`` raises the number of examples (the longer run:
benchmarks/fuzz_long.py)."""

from __future__ import annotations

import os
import resource
import struct
import subprocess
import sys
import tracemalloc
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odop.errors import ProtocolError
from odop.protocol import VERSION, MsgType, decode, encode, make, validate
from odop.protocol.codec import MAX_MESSAGE_BYTES
from odop.protocol.messages import SCHEMA
from tests.conftest import child_env

settings.register_profile(
    "odop-fuzz", max_examples=int(os.environ.get("ODOP_FUZZ_EXAMPLES", "200")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
FUZZ = settings.get_profile("odop-fuzz")
RSS_GROWTH_BOUND = 256 * 1024 * 1024
"""Bytes a whole fuzz test may add to this process's peak RSS."""

pytestmark = pytest.mark.timeout(300)

# -- value strategies ------------------------------------------------------------------
SCALARS = (st.none() | st.booleans()
           | st.integers(min_value=-(2**63), max_value=2**64 - 1)
           | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=40) | st.binary(max_size=40))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=6),
    max_leaves=30)


def _field_value(types: tuple[type, ...]) -> st.SearchStrategy[Any]:
    """A valid value for a schema field whose accepted types are ``types``."""
    options: list[st.SearchStrategy[Any]] = []
    for t in types:
        if t is str:
            options.append(st.text(min_size=1, max_size=20))
        elif t is int:
            options.append(st.integers(min_value=0, max_value=2**31))
        elif t is float:
            options.append(st.floats(min_value=0, max_value=1e9))
        elif t is bool:
            options.append(st.booleans())
        elif t is bytes:
            options.append(st.binary(max_size=20))
        elif t is list:
            options.append(st.lists(st.integers(0, 255), max_size=4))
        elif hasattr(t, "item_types"):  # a typed list (messages.ListOf)
            options.append(st.lists(_field_value(t.item_types), max_size=4))
        elif t is dict:
            options.append(st.dictionaries(st.text(max_size=8), SCALARS, max_size=4))
        elif t is type(None):
            options.append(st.none())
    return st.one_of(options)


@st.composite
def valid_messages(draw: st.DrawFn, mtype: MsgType | None = None) -> dict[str, Any]:
    """A message of ``mtype`` (or any type) that follows the schema."""
    mtype = mtype or draw(st.sampled_from(list(MsgType)))
    fields = {name: draw(_field_value(types)) for name, types in SCHEMA[mtype].items()}
    if "routes" in fields:  # relay, deliver: one route a message
        fields["msgs"] = fields["msgs"][:len(fields["routes"])]
        fields["routes"] = fields["routes"][:len(fields["msgs"])]
    return make(mtype, **fields)


@st.composite
def mutated_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid message with one to three mutations of its fields."""
    msg = draw(valid_messages())
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["drop", "retype", "extra", "version", "type", "huge"]))
        key = draw(st.sampled_from(sorted(msg)))
        if kind == "drop":
            msg.pop(key, None)
        elif kind == "retype":
            msg[key] = draw(VALUES)
        elif kind == "extra":
            msg[draw(st.text(max_size=10))] = draw(VALUES)
        elif kind == "version":
            msg["v"] = draw(st.sampled_from([0, 2, -1, 2**64 - 1, 1.0, True, "1", None,
                                             float("nan"), [1], {"v": 1}]))
        elif kind == "type":
            msg["type"] = draw(st.sampled_from([t.value.upper() for t in MsgType])
                               | VALUES)
        else:
            msg[key] = draw(st.sampled_from(["x" * 100_000, [0] * 50_000,
                                             {str(i): i for i in range(5_000)}]))
    return msg


# -- the contract -------------------------------------------------------------------------
def _contract(data: bytes) -> None:
    """validate(decode(data)) returns a schema-true message or raises ProtocolError."""
    try:
        mtype, msg = validate(decode(data))
    except ProtocolError:
        return
    assert isinstance(mtype, MsgType)
    assert type(msg["v"]) is int and msg["v"] == VERSION
    assert isinstance(msg["id"], str) and msg["id"]
    for name, types in SCHEMA[mtype].items():
        if name in msg:
            assert isinstance(msg[name], types), (name, msg[name])
            assert not isinstance(msg[name], bool) or bool in types, (name, msg[name])


class _PeakRss:
    """Asserts the peak RSS of this process grew less than RSS_GROWTH_BOUND."""

    def __enter__(self) -> _PeakRss:
        self.before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc: object) -> None:
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert after - self.before < RSS_GROWTH_BOUND, f"peak RSS grew {after - self.before} B"


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    _contract(data)


@FUZZ
@given(VALUES)
def test_any_msgpack_value(value: Any) -> None:
    _contract(_pack(value))


@FUZZ
@given(valid_messages())
def test_valid_messages_of_every_type_pass(msg: dict[str, Any]) -> None:
    mtype, back = validate(decode(encode(msg)))
    assert mtype.value == msg["type"] and encode(back) == encode(msg)  # NaN-safe equality


@FUZZ
@given(mutated_messages())
def test_mutated_messages(msg: dict[str, Any]) -> None:
    _contract(_pack(msg))


@FUZZ
@given(valid_messages(), st.data())
def test_truncated_and_flipped_bytes(msg: dict[str, Any], data: st.DataObject) -> None:
    raw = bytearray(encode(msg))
    cut = data.draw(st.integers(0, len(raw) - 1))
    _contract(bytes(raw[:cut]))
    at = data.draw(st.integers(0, len(raw) - 1))
    raw[at] = data.draw(st.integers(0, 255))
    _contract(bytes(raw))
    _contract(bytes(raw) + data.draw(st.binary(min_size=1, max_size=8)))


def test_whole_fuzz_session_stays_in_bounded_memory() -> None:
    with _PeakRss():
        for fuzz in (test_random_bytes, test_any_msgpack_value, test_mutated_messages):
            fuzz()


# -- hand-made hostile inputs -----------------------------------------------------------
def _status(**extra: Any) -> dict[str, Any]:
    return {"v": VERSION, "type": "status", "id": "x", **extra}


HOSTILE = {
    "nested 10,000 lists": b"\x91" * 10_000 + b"\xc0",
    "nested 10,000 maps": b"\x81\xa1k" * 10_000 + b"\xc0",
    "nesting inside a valid message": _pack(_status())[:-1] + b"\x91" * 10_000 + b"\xc0",
    "array claiming 2^32-1 items": b"\xdd\xff\xff\xff\xff",
    "map claiming 2^32-1 pairs": b"\xdf\xff\xff\xff\xff",
    "str claiming 4 GiB": b"\xdb\xff\xff\xff\xff" + b"a" * 16,
    "bin claiming 4 GiB": b"\xc6\xff\xff\xff\xff" + b"a" * 16,
    "ext claiming 4 GiB": b"\xc9\xff\xff\xff\xff\x05",
    "truncated map": _pack(_status())[:-3],
    "trailing garbage": _pack(_status()) + b"\x00",
    "two messages glued": _pack(_status()) * 2,
    "never-used byte 0xc1": b"\xc1",
    "empty": b"",
    "int map key": _pack({1: 1, "v": 1}),
    "float map key": b"\x81\xcb" + struct.pack(">d", 1.5) + b"\x01",
    "nil map key": b"\x81\xc0\x01",
    "list map key": b"\x81\x91\x01\x01",
    "bytes map keys": _pack({b"v": 1, b"type": b"status", b"id": b"x"}),
    "application ext type": _pack(_status(obj=msgpack.ExtType(1, b"\x80\x04N."))),
    "ext type as the message": _pack(msgpack.ExtType(42, b"data")),
    "malformed timestamp ext": b"\xd4\xff\x01",
    "version nan": _pack(_status(v=float("nan"))),
    "version true": _pack(_status(v=True)),
    "version 1.0": _pack(_status(v=1.0)),
    "version 2^64-1": _pack(_status(v=2**64 - 1)),
    "version -2^63": _pack(_status(v=-(2**63))),
    "type is a list": _pack(_status(type=["status"])),
    "type is a map": _pack(_status(type={"a": 1})),
    "type is bytes": _pack(_status(type=b"status")),
    "id is a list": _pack(_status(id=["x"])),
    "huge id": _pack(_status(id="x" * 1_000_000)),
    "huge extra list": _pack(_status(junk=list(range(200_000)))),
    "one byte over the size limit": b"\xc0" * (MAX_MESSAGE_BYTES + 1),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_refused_or_schema_true(name: str) -> None:
    data = HOSTILE[name]
    tracemalloc.start()
    try:
        _contract(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * len(data) + 4 * 1024 * 1024, f"{name}: {peak} B traced for {len(data)} B"


@pytest.mark.parametrize("name", ["nested 10,000 lists", "array claiming 2^32-1 items",
                                  "application ext type", "ext type as the message",
                                  "type is a list", "version true", "version 1.0",
                                  "trailing garbage", "one byte over the size limit"])
def test_hostile_input_is_refused(name: str) -> None:
    with pytest.raises(ProtocolError):
        validate(decode(HOSTILE[name]))


def test_timestamp_extension_decodes_to_a_plain_float_never_an_object() -> None:
    value = decode(_pack(_status(t=msgpack.Timestamp(5, 500_000_000))))["t"]
    assert type(value) is float and value == 5.5


def test_huge_int_beyond_uint64_is_refused() -> None:
    # msgpack cannot carry ints beyond 64 bits; the largest it carries pass through unchanged.
    assert decode(_pack(2**64 - 1)) == 2**64 - 1
    with pytest.raises(OverflowError):
        _pack(2**64)


_AMPLIFY = """
import resource, struct, sys
from odop.errors import ProtocolError
from odop.protocol.codec import MAX_MESSAGE_BYTES, decode
n = MAX_MESSAGE_BYTES - 5
data = b"\\xdd" + struct.pack(">I", n) + bytes.fromhex(sys.argv[1]) * n
with open("/proc/self/status") as fh:
    vm = [int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize")][0]
limit = vm + int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    decode(data)
except ProtocolError:
    pass
"""


@pytest.mark.parametrize("item", ["80", "90"], ids=["empty-maps", "empty-lists"])
def test_largest_accepted_message_decodes_in_bounded_memory(item: str) -> None:
    """A message of the largest accepted size, of one-byte containers, decodes (or is
    refused) within RSS_GROWTH_BOUND more address space."""
    proc = subprocess.run([sys.executable, "-c", _AMPLIFY, item, str(RSS_GROWTH_BOUND)],
                          capture_output=True, text=True, timeout=120, env=child_env())
    assert proc.returncode == 0, proc.stderr[-500:]


@pytest.mark.parametrize("field", ["v", "type", "id", "ref"])
def test_error_text_quotes_a_bounded_part_of_the_bad_value(field: str) -> None:
    msg = {"v": VERSION, "type": "ack", "id": "x", "ref": "r", field: ["x" * 100_000]}
    with pytest.raises(ProtocolError) as info:
        validate(decode(_pack(msg)))
    assert len(str(info.value)) < 600
