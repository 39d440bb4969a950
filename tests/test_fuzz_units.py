"""Fuzzing the unit parsers: only ValueError escapes; results are finite and >= 0.
``ODOP_FUZZ_EXAMPLES`` raises the number of examples (benchmarks/fuzz_long.py)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odop.tasks.units import parse_cpus, parse_duration, parse_memory

settings.register_profile(
    "odop-fuzz", max_examples=int(os.environ.get("ODOP_FUZZ_EXAMPLES", "200")), deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ = settings.get_profile("odop-fuzz")

PARSERS: dict[str, Callable[[object], float]] = {
    "duration": parse_duration, "memory": parse_memory, "cpus": parse_cpus}
UNITS = ["", "ms", "s", "sec", "min", "h", "d", "K", "k", "M", "G", "T", "P", "Ki", "Mi", "Gi",
         "KB", "MiB", "B", "m", "mcpu", "cpu", "cpus", "x", " ", "e3", "inf"]
NUMBERS = st.from_regex(r"\A[+-]?(\d{0,400}(\.\d{0,40})?|\.\d+)([eE][+-]?\d{1,4})?\Z")
QUANTITY_TEXT = st.builds(lambda n, sp, u: f"{n}{sp}{u}", NUMBERS,
                          st.sampled_from(["", " ", "\t", "\n"]), st.sampled_from(UNITS))
ANY_INPUT = (st.text(max_size=60) | QUANTITY_TEXT
             | st.integers(min_value=-(2**128), max_value=2**128)
             | st.integers(min_value=10**300, max_value=10**307)
             | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none()
             | st.binary(max_size=10) | st.lists(st.integers(), max_size=3)
             | st.just(complex(1, 1)) | st.just(object()))


def _contract(parse: Callable[[object], float], value: Any) -> None:
    try:
        result = parse(value)
    except ValueError:
        return
    assert not isinstance(result, bool)
    assert math.isfinite(result) and result >= 0, (value, result)
    if parse is parse_memory:
        assert isinstance(result, int)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(value=ANY_INPUT)
def test_parsers_raise_only_value_error(name: str, value: Any) -> None:
    _contract(PARSERS[name], value)


@pytest.mark.parametrize("name", sorted(PARSERS))
@FUZZ
@given(value=QUANTITY_TEXT)
def test_quantity_like_strings(name: str, value: str) -> None:
    _contract(PARSERS[name], value)


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("value", [10**400, -(10**400), 2**1024], ids=["1e400", "-1e400",
                                                                       "2^1024"])
def test_ints_too_large_for_a_float_are_a_value_error(name: str, value: int) -> None:
    with pytest.raises(ValueError):
        PARSERS[name](value)


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize("value", ["9" * 400, "9" * 400 + "m", "1" + "0" * 5000 + "d",
                                   "٣s", "１０min", "1_000", "0x10", "1e3", "nan", "inf",
                                   "-1", "+1", "", " ", "\x00", "1\x00s"])
def test_hand_made_strings(name: str, value: str) -> None:
    _contract(PARSERS[name], value)
