"""A one-line progress bar for terminals (plain lines when not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Redraws one line in place: ``label [#####.....] done/total  extra``."""

    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.label, self.stream, self.width = label, stream, width
        self.tty = stream.isatty()
        self._last = ""
        self._last_plain = 0.0

    def update(self, done: int, total: int, extra: str = "") -> None:
        frac = done / total if total else 0.0
        filled = int(frac * self.width)
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} {extra}"
        if line == self._last:
            return
        self._last = line
        if self.tty:
            self.stream.write("\r" + line.ljust(79)[:120])
            self.stream.flush()
        elif time.monotonic() - self._last_plain > 2.0:
            self._last_plain = time.monotonic()
            self.stream.write(line + "\n")

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()
