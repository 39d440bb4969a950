"""``LineTrigger``: each line appended to a file, exactly once, also across restarts.

The persisted state is the byte offset just after the last complete line consumed,
the line count, the file's (device, inode) and a fingerprint of its first bytes. So:

- a partial last line (no newline yet) waits until its newline arrives;
- a truncated file (size < offset, or other first bytes: ``copytruncate``) restarts
  from its beginning;
- a rotated file (the path now names another inode) is drained to its end through the
  still-open descriptor, then the new file is read from its beginning;
- a restart resumes at the stored offset when the file is the same one.

Lines rotated away while odop was not running are not seen; a line longer than 1 MiB
is delivered in 1 MiB pieces. Submissions:
``{"line": "text without newline", "path": "/abs/file", "lineno": n}`` (1-based).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from odop.tasks.triggers.base import TriggerState, WatchingTrigger
from odop.tasks.triggers.inotify import IN_CLOSE_WRITE, IN_CREATE, IN_MODIFY, IN_MOVED_TO

__all__ = ["LineTrigger"]

_HEAD_BYTES = 256
_CHUNK = 1 << 20  # bytes read per poll at most: bounds the work of one poll


class LineTrigger(WatchingTrigger):
    """Submits one ``{"line", "path", "lineno"}`` per complete line appended to ``path``."""

    kind = "line"

    def __init__(self, key: str, state: TriggerState, path: str, *, base_dir: str = ".",
                 use_inotify: bool | None = None, auto_commit: bool = True) -> None:
        super().__init__(key, state, auto_commit=auto_commit)
        self.path = os.path.normpath(os.path.join(os.path.abspath(base_dir),
                                                  os.path.expanduser(path)))
        self._key = f"{key}/line"
        self._pos: dict[str, Any] = state.get(self._key) or {}
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._more = False
        if use_inotify is not False:
            self._start_inotify(os.path.dirname(self.path),
                                IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO,
                                required=use_inotify is True)

    def next_due(self, now: float) -> float | None:
        if self._more:  # a poll stopped at _CHUNK: come back at once
            return now
        return None if self._watch is not None else now + self.poll_interval_s

    def _poll(self, now: float) -> list[dict[str, Any]]:
        if self._watch is not None:
            self._watch.drain()  # the events only wake us up; the file itself is the truth
        out: list[dict[str, Any]] = []
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        ident = (st.st_dev, st.st_ino) if st is not None else None
        if self._fd is not None and ident != self._ident:
            self._read(out, final=True)  # rotated or deleted: drain the old file
            os.close(self._fd)
            self._fd = None
            self._pos = {}
        if st is None:
            return out
        if self._fd is None and not self._open(ident):
            return out
        if st.st_size < self._pos["offset"] or not self._same_head():
            self._pos.update(offset=0, lineno=0, head="", head_len=0)
        self._read(out, final=False)
        return out

    def _open(self, ident: tuple[int, int] | None) -> bool:
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return False
        fstat = os.fstat(self._fd)
        self._ident = (fstat.st_dev, fstat.st_ino)
        if [self._pos.get("dev"), self._pos.get("ino")] != list(self._ident):
            self._pos = {"offset": 0, "lineno": 0, "head": "", "head_len": 0}
        self._pos.update(dev=self._ident[0], ino=self._ident[1])
        return True

    def _same_head(self) -> bool:
        assert self._fd is not None
        n = self._pos.get("head_len", 0)
        return n == 0 or _digest(os.pread(self._fd, n, 0)) == self._pos.get("head")

    def _read(self, out: list[dict[str, Any]], *, final: bool) -> None:
        """Consume the complete lines after the offset (and a last partial one if final)."""
        assert self._fd is not None
        offset, lineno = self._pos["offset"], self._pos["lineno"]
        data = os.pread(self._fd, _CHUNK, offset)
        self._more = len(data) == _CHUNK
        end = len(data) if final else data.rfind(b"\n") + 1
        if end == 0 and self._more:  # one line longer than _CHUNK: deliver it in pieces
            end = len(data)
        lines = data[:end].split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        for raw in lines:
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            lineno += 1
            out.append({"line": raw.decode("utf-8", "replace"), "path": self.path,
                        "lineno": lineno})
        if end == 0:
            return
        offset += end
        self._pos.update(offset=offset, lineno=lineno)
        if self._pos.get("head_len", 0) < _HEAD_BYTES:
            head = os.pread(self._fd, min(offset, _HEAD_BYTES), 0)
            self._pos.update(head=_digest(head), head_len=len(head))
        self._stage(self._key, dict(self._pos))

    def close(self) -> None:
        super().close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()
