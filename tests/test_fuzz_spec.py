"""Fuzzing the task spec parser: only SpecError (a ValueError) escapes, never TypeError,
KeyError or AttributeError; what it accepts crosses the wire and comes back equal.
``ODOP_FUZZ_EXAMPLES`` raises the number of examples (benchmarks/fuzz_long.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odop.errors import SpecError
from odop.protocol import decode, encode
from odop.tasks.spec import USER_FIELDS, TaskSpec, check_spec, parse_spec

settings.register_profile(
    "odop-fuzz", max_examples=int(os.environ.get("ODOP_FUZZ_EXAMPLES", "200")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile("odop-fuzz")
pytestmark = pytest.mark.timeout(300)

SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
JSONISH = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
UNIT_TEXT = st.sampled_from(["10min", "500ms", "1.5h", "2G", "512Mi", "500m", "500mcpu", "2",
                             "0", "0s", "-1", "1e3", "abc", "", "3d", "11000d", "1.5cpu"])
NAMES = st.sampled_from(["reduce", "a", "_x.y-z", "1bad", "", "r" * 200, "b c", "reduce2"])
TRIGGERS = st.fixed_dictionaries({}, optional={
    "kind": st.sampled_from(["file", "folder", "line", "every", "after", "nope"]) | JSONISH,
    "file": st.text(max_size=12) | JSONISH, "folder": st.text(max_size=12) | JSONISH,
    "line": st.text(max_size=12) | JSONISH, "every": UNIT_TEXT | JSONISH,
    "after": NAMES | JSONISH, "event": st.sampled_from(["created", "changed", "created|changed",
                                                        "x"]) | JSONISH,
    "events": st.lists(st.sampled_from(["created", "changed", "x"]), max_size=3) | JSONISH,
    "settle": UNIT_TEXT | JSONISH, "settle_s": SCALARS, "path": st.text(max_size=12) | JSONISH,
    "period_s": SCALARS, "task": NAMES | JSONISH,
})
ENERGY = st.fixed_dictionaries({}, optional={
    "deferrable": st.booleans() | JSONISH, "max_delay": UNIT_TEXT | JSONISH,
    "carbon_threshold": st.sampled_from(["low", "medium", "high", "x"]) | SCALARS,
    "price_threshold": SCALARS, "other": SCALARS,
})
RANGE = (UNIT_TEXT | SCALARS | st.lists(UNIT_TEXT | SCALARS, max_size=3)
         | st.dictionaries(st.sampled_from(["min", "max", "mid"]), UNIT_TEXT | SCALARS,
                           max_size=3))
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": NAMES | JSONISH,
    "kind": st.sampled_from(["python", "executable", "mpi", "java"]) | JSONISH,
    "function": st.sampled_from(["pkg.mod:func", "mod:a.b", "file.py:f", "/abs/x.py:f",
                                 "no_colon", ":f", "m:", "a:b:c"]) | JSONISH,
    "program": st.sampled_from(["ls", "./run.sh", "/bin/true", "", " ", "a\0b", "~/x"])
    | JSONISH,
    "argv": st.lists(st.sampled_from(["{path}", "{0}", "{a.b}", "{x!r}", "{", "}", "-v", 3,
                                      1.5, True, None, float("nan")]), max_size=4)
    | st.sampled_from(["run {path}", "'unclosed", "a {b:>3}"]) | JSONISH,
    "time": UNIT_TEXT | JSONISH, "deadline": UNIT_TEXT | JSONISH,
    "retry_backoff": UNIT_TEXT | JSONISH,
    "cpus": RANGE, "memory": RANGE, "threads": RANGE,
    "depends_on": NAMES | st.lists(NAMES | JSONISH, max_size=3) | JSONISH,
    "trigger": TRIGGERS | JSONISH, "energy": ENERGY | JSONISH,
    "preempt": st.sampled_from(["pause", "repin", "requeue", "stop"]) | JSONISH,
}
FIELD_VALUES["executable"] = FIELD_VALUES["program"]


@st.composite
def declarations(draw: st.DrawFn) -> dict[Any, Any]:
    """A task declaration: mostly known fields with plausible or wrong values."""
    keys = draw(st.lists(st.sampled_from(USER_FIELDS), max_size=8, unique=True))
    decl: dict[Any, Any] = {k: draw(FIELD_VALUES.get(k, SCALARS | JSONISH)) for k in keys}
    if draw(st.booleans()):
        decl["name"] = draw(NAMES)
    if draw(st.integers(0, 4)) == 0:
        decl[draw(st.text(max_size=8) | st.integers() | st.none())] = draw(SCALARS)
    return decl


def _contract(decl: Any) -> None:
    spec, errors = check_spec(decl, source="fuzz.toml")
    assert all(isinstance(e, SpecError) and isinstance(e, ValueError) for e in errors)
    assert all(str(e) for e in errors)
    if errors:
        assert spec is None
        with pytest.raises(SpecError):
            parse_spec(decl, source="fuzz.toml")
        return
    assert isinstance(spec, TaskSpec)
    wire = decode(encode(spec.to_dict()))
    assert TaskSpec.from_dict(wire) == spec


@FUZZ
@given(declarations())
def test_declarations(decl: dict[Any, Any]) -> None:
    _contract(decl)


@FUZZ
@given(JSONISH)
def test_anything_at_all(value: Any) -> None:
    _contract(value)


@FUZZ
@given(st.dictionaries(st.sampled_from(USER_FIELDS), JSONISH, max_size=10))
def test_known_fields_with_any_values(decl: dict[str, Any]) -> None:
    _contract(decl)


@pytest.mark.parametrize("decl", [
    {"name": "t", "function": "m:f", "cpus": {}},
    {"name": "t", "function": "m:f", "cpus": [None, None]},
    {"name": "t", "function": "m:f", "cpus": {"min": None, "max": None}},
    {"name": "t", "function": "m:f", "time": 10**400},
    {"name": "t", "function": "m:f", "cpus": {"min": "2", "max": "1"}},
    {"name": "t", "function": "m:f", "memory": [1, 2, 3]},
    {"name": "t", "function": "m:f", "threads": ["x", 2]},
    {"name": "t", "function": "m:f", "trigger": {"after": ["a"]}},
    {"name": "t", "function": "m:f", "trigger": {"every": None}},
    {"name": "t", "function": "m:f", "trigger": {"kind": ["file"]}},
    {"name": "t", "function": "m:f", "energy": {"max_delay": "1h"}},
    {"name": "t", "function": "m:f", "depends_on": [["a"]]},
    {"name": "t", "program": "ls", "argv": "{a[0]}"},
    {"name": "t", "program": "ls", "argv": ["{", "}"]},
    {"name": ["t"], "function": "m:f"},
    {1: 2, None: 3, ("a",): 4},
    [("name", "t")],
    "name = 't'",
    None,
])
def test_hand_made_declarations(decl: Any) -> None:
    _contract(decl)
