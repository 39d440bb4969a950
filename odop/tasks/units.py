"""Strict parsers for the units a task declaration uses.

- durations -> float seconds: ``"500ms"``, ``"90s"``, ``"10min"``, ``"1.5h"``, ``"2d"``,
  or a plain non-negative number of seconds;
- memory -> int bytes: SI suffixes ``K``/``M``/``G``/``T`` (also ``KB``...; powers of 1000),
  IEC suffixes ``Ki``/``Mi``/``Gi``/``Ti`` (also ``KiB``...; powers of 1024), ``B``,
  or a plain non-negative integer of bytes;
- cpus -> float cores: ``"500m"`` or ``"500mcpu"`` (millicores), ``"2"``, ``"1.5cpu"``,
  or a plain non-negative number of cores.

Every parser raises ``ValueError`` naming the value and the accepted forms; the spec
layer turns it into a ``SpecError`` naming the task and the field.
"""

from __future__ import annotations

import math
import re

__all__ = [
    "DURATION_FORMS",
    "MEMORY_FORMS",
    "CPUS_FORMS",
    "parse_duration",
    "parse_memory",
    "parse_cpus",
    "format_duration",
]

DURATION_FORMS = "a number of seconds >= 0, or a string like '500ms', '90s', '10min', '1.5h', '2d'"
MEMORY_FORMS = (
    "an integer number of bytes >= 0, or a string like '512M', '2G', '2GB' (SI, powers of 1000) "
    "or '512Mi', '2GiB' (IEC, powers of 1024)"
)
CPUS_FORMS = "a number of cores >= 0, or a string like '500m', '500mcpu', '2', '1.5cpu'"

_NUMBER = r"(?P<num>\d+(?:\.\d+)?|\.\d+)"
_DURATION_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>ms|s|sec|min|h|d)?$")
_MEMORY_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>[KkMGTP]i?B?|B)?$")
_CPUS_RE = re.compile(rf"^{_NUMBER}\s*(?P<unit>m|mcpu|cpu|cpus)?$")

_DURATION_SCALE = {None: 1.0, "ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0,
                   "h": 3600.0, "d": 86400.0}
_MEMORY_POWER = {"K": 1, "k": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_MAX_SECONDS = 10 * 365 * 86400.0   # ten years: anything longer is a typo
_MAX_BYTES = 2**63 - 1


def _plain_number(value: object, forms: str) -> float | None:
    """The value as a float if it is an int/float (never a bool), else None."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is a boolean, not a quantity; accepted: {forms}")
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{value!r} is not a finite number >= 0; accepted: {forms}")
        return number
    return None


def _match(pattern: re.Pattern[str], value: object, forms: str) -> re.Match[str]:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} ({type(value).__name__}) is not a quantity; accepted: {forms}")
    match = pattern.match(value.strip())
    if match is None:
        raise ValueError(f"{value!r} is not understood; accepted: {forms}")
    return match


def parse_duration(value: object) -> float:
    """Seconds (float >= 0) from a number of seconds or a string with a unit."""
    number = _plain_number(value, DURATION_FORMS)
    if number is None:
        match = _match(_DURATION_RE, value, DURATION_FORMS)
        number = float(match["num"]) * _DURATION_SCALE[match["unit"]]
    if not math.isfinite(number) or number > _MAX_SECONDS:
        raise ValueError(f"{value!r} is longer than ten years; accepted: {DURATION_FORMS}")
    return number


def parse_memory(value: object) -> int:
    """Bytes (int >= 0) from an integer of bytes or a string with an SI/IEC suffix."""
    number = _plain_number(value, MEMORY_FORMS)
    if number is not None:
        if not number.is_integer():
            raise ValueError(f"{value!r} is not a whole number of bytes; accepted: {MEMORY_FORMS}")
        scaled = number
    else:
        match = _match(_MEMORY_RE, value, MEMORY_FORMS)
        unit = match["unit"] or "B"
        if unit[0] in _MEMORY_POWER:
            base = 1024 if unit[1:2] == "i" else 1000
            scaled = float(match["num"]) * base ** _MEMORY_POWER[unit[0]]
        elif unit == "B":
            scaled = float(match["num"])
        else:  # pragma: no cover - the regex admits nothing else
            raise ValueError(f"{value!r} is not understood; accepted: {MEMORY_FORMS}")
    if not math.isfinite(scaled) or scaled > _MAX_BYTES:
        raise ValueError(f"{value!r} is too large; accepted: {MEMORY_FORMS}")
    return int(round(scaled))


def parse_cpus(value: object) -> float:
    """Cores (float >= 0) from a number of cores or a string, 'm' meaning millicores."""
    number = _plain_number(value, CPUS_FORMS)
    if number is None:
        match = _match(_CPUS_RE, value, CPUS_FORMS)
        number = float(match["num"])
        if match["unit"] in ("m", "mcpu"):
            number /= 1000.0
    if number > 1e6:
        raise ValueError(f"{value!r} is more than a million cores; accepted: {CPUS_FORMS}")
    return number


def format_duration(seconds: float) -> str:
    """A short human form of a duration in seconds ('90s', '10min', '1.5h')."""
    for unit, scale in (("d", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if seconds >= scale:
            return f"{seconds / scale:g}{unit}"
    return f"{seconds * 1000:g}ms"


def format_memory(nbytes: float) -> str:
    """A short human form of a size in bytes ('512 MiB', '1.5 GiB')."""
    for unit, scale in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.4g} {unit}"
    return f"{nbytes:.0f} B"


def duration_field(task: str, field: str, value: object, *, positive: bool = False) -> float:
    """``value`` as seconds for a task's ``field``, or a SpecError naming task and field."""
    from odop.errors import SpecError

    try:
        seconds = parse_duration(value)
    except ValueError:
        raise SpecError(task, field, value, DURATION_FORMS) from None
    if positive and seconds <= 0:
        raise SpecError(task, field, value, "a duration > 0")
    return seconds
