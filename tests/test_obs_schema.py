from __future__ import annotations

import pytest

from odop_obs.errors import SampleError
from odop_obs.schema import SCHEMA_VERSION, TOPIC_PREFIX, header, topic_for, validate_sample


def test_header_is_a_valid_sample() -> None:
    msg = header("n1", 42, 7, 1.5, 1.0)
    assert validate_sample(msg) == msg
    assert msg["id"] == "n1:42:7" and msg["v"] == SCHEMA_VERSION


def test_topic_is_prefixed_by_node() -> None:
    assert topic_for("n1").startswith(TOPIC_PREFIX) and topic_for("n1").endswith(b"n1")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"v": 2}, "'v'"),
        ({"type": "other"}, "'type'"),
        ({"seq": "3"}, "'seq'"),
        ({"t": True}, "'t'"),
        ({"node": None}, "'node'"),
    ],
)
def test_wrong_fields_are_named(change: dict[str, object], words: str) -> None:
    msg = {**header("n1", 1, 0, 0.0, 0.0), **change}
    with pytest.raises(SampleError, match=words):
        validate_sample(msg)


def test_missing_field_and_non_map() -> None:
    msg = header("n1", 1, 0, 0.0, 0.0)
    del msg["dt"]
    with pytest.raises(SampleError, match="'dt' is missing"):
        validate_sample(msg)
    with pytest.raises(SampleError, match="map"):
        validate_sample([1, 2])
