"""Option value types: a bad value is refused by the parser, naming what is allowed."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence


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


def names_from(allowed: Sequence[str]) -> Callable[[str], list[str]]:
    """A type for a comma-separated list of names out of ``allowed``."""

    def parse(text: str) -> list[str]:
        names = [x for x in text.split(",") if x]
        unknown = [x for x in names if x not in allowed] or ([] if names else [repr(text)])
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        return names

    return parse
