"""Handing freed heap memory back to the kernel, now and then, in long-running daemons.

glibc's malloc keeps memory that C code (ZeroMQ, SQLite, numpy, the interpreter itself)
has freed in its arenas for reuse; in a daemon that runs for hours that shows as a slowly
rising resident set with nothing leaked. ``malloc_trim(0)`` returns the free pages at the
top and inside every arena. ``trim_heap()`` does so at most once per ``every_s`` seconds,
so a loop may call it on every turn; where glibc is absent (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable

TRIM_EVERY_S = 60.0
"""Least time between two trims by ``trim_heap`` (seconds)."""


def _load_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where this C library has none."""
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class HeapTrimmer:
    """Calls ``malloc_trim(0)`` when asked, at most once per ``every_s`` seconds."""

    def __init__(self, every_s: float = TRIM_EVERY_S,
                 trim: Callable[[int], int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self.trim = trim if trim is not None else _load_trim()
        self.clock = clock
        self.last = clock()
        self.trims = 0

    @property
    def available(self) -> bool:
        """True where the C library can trim (glibc)."""
        return self.trim is not None

    def maybe_trim(self) -> bool:
        """Trim if ``every_s`` seconds have passed since the last one; True if it trimmed."""
        if self.trim is None:
            return False
        now = self.clock()
        if now - self.last < self.every_s:
            return False
        self.last = now
        self.trim(0)
        self.trims += 1
        return True


_DEFAULT = HeapTrimmer()


def trim_heap() -> bool:
    """The process's trimmer: trim at most once a minute; True if it trimmed now."""
    return _DEFAULT.maybe_trim()
