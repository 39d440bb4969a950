"""Strict unit parsing: durations (s), memory (bytes), cpus (cores)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odop.tasks.units import (
    format_duration,
    format_memory,
    parse_cpus,
    parse_duration,
    parse_memory,
)


@pytest.mark.parametrize(("value", "seconds"), [
    ("90s", 90.0), ("10min", 600.0), ("1.5h", 5400.0), ("2d", 172800.0), ("500ms", 0.5),
    ("90", 90.0), (90, 90.0), (0.25, 0.25), ("0s", 0.0), (" 3 s ", 3.0), ("2sec", 2.0),
    (".5s", 0.5),
])
def test_duration_good(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [
    "10 minutes", "-1s", "", "1e999s", True, False, "1e3s", "10m", "s", "1.5.2s", None,
    [1], float("inf"), float("nan"), -3, "11y", 1e12, "10MIN",
])
def test_duration_bad(value: object) -> None:
    with pytest.raises(ValueError, match="accepted") as info:
        parse_duration(value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize(("value", "nbytes"), [
    ("2G", 2 * 10**9), ("2GB", 2 * 10**9), ("2GiB", 2 * 2**30), ("2Gi", 2 * 2**30),
    ("512M", 512 * 10**6), ("512MiB", 512 * 2**20), ("1k", 1000), ("1KiB", 1024),
    ("1.5G", 1_500_000_000), (4096, 4096), ("4096", 4096), ("10B", 10), (0, 0), (2.0, 2),
    ("1T", 10**12),
])
def test_memory_good(value: object, nbytes: int) -> None:
    got = parse_memory(value)
    assert got == nbytes and isinstance(got, int)


@pytest.mark.parametrize("value", [
    "2 gigabytes", "-1G", "", "2g", "2X", True, 1.5, None, "1e9", "G", float("inf"),
    "99999999999999999999P", {"max": 1},
])
def test_memory_bad(value: object) -> None:
    with pytest.raises(ValueError, match="accepted"):
        parse_memory(value)


@pytest.mark.parametrize(("value", "cores"), [
    ("500mcpu", 0.5), ("500m", 0.5), ("2", 2.0), (2, 2.0), (1.5, 1.5), ("1.5cpu", 1.5),
    ("4cpus", 4.0), ("1000m", 1.0),
])
def test_cpus_good(value: object, cores: float) -> None:
    assert parse_cpus(value) == pytest.approx(cores)


@pytest.mark.parametrize("value", [
    "two", "-1", "", True, "500 millicores", None, "1e3", float("nan"), "2M", 10**9,
])
def test_cpus_bad(value: object) -> None:
    with pytest.raises(ValueError, match="accepted"):
        parse_cpus(value)


def test_format_duration() -> None:
    assert format_duration(90) == "1.5min"
    assert format_duration(0.5) == "500ms"
    assert format_duration(7200) == "2h"


@given(st.integers(min_value=0, max_value=80_000), st.sampled_from(
    [("ms", 1e-3), ("s", 1.0), ("min", 60.0), ("h", 3600.0), ("", 1.0)]))
def test_duration_units_scale(n: int, unit: tuple[str, float]) -> None:
    assert parse_duration(f"{n}{unit[0]}") == pytest.approx(n * unit[1])


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(
    [("K", 10**3), ("M", 10**6), ("G", 10**9), ("Ki", 2**10), ("MiB", 2**20), ("GiB", 2**30)]))
def test_memory_units_scale(n: int, unit: tuple[str, int]) -> None:
    assert parse_memory(f"{n}{unit[0]}") == n * unit[1]


@given(st.text(max_size=12))
def test_parsers_raise_only_value_error(text: str) -> None:
    for parse in (parse_duration, parse_memory, parse_cpus):
        with contextlib.suppress(ValueError):
            parse(text)


def test_format_memory() -> None:
    assert format_memory(1536 * 2**20) == "1.5 GiB"
    assert format_memory(2**40) == "1 TiB" and format_memory(512) == "512 B"
