"""Option value types: a bad value is refused by the parser, naming what is allowed."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be an integer >= 1")
    return value


def seconds(text: str) -> float:
    """A finite number of seconds >= 0."""
    return _seconds(text, lambda v: v >= 0.0, ">= 0")


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0."""
    return _seconds(text, lambda v: v > 0.0, "> 0")


def _seconds(text: str, ok: Callable[[float], bool], bound: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds {bound}")
    return value
