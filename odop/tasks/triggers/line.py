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

The lines a log held when the run started are not new (``skip_before``): the launcher
notes where the log ended then (``note_start``, before the program runs); without a
note, a log last modified before the start is old to its end, one modified since is new
from its first line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from odop.errors import SpecError
from odop.plugins import TRIGGERS
from odop.tasks.triggers.base import TriggerState, WatchingTrigger
from odop.tasks.triggers.inotify import IN_CLOSE_WRITE, IN_CREATE, IN_MODIFY, IN_MOVED_TO
from odop.tasks.triggers.spec import existing_option, trigger_path

__all__ = ["LineTrigger", "note_start"]
log = logging.getLogger("odop.triggers")

_HEAD_BYTES = 256
_CHUNK = 1 << 20  # bytes read per poll at most: bounds the work of one poll


@TRIGGERS.register
class LineTrigger(WatchingTrigger):
    """Submits one ``{"line", "path", "lineno"}`` per complete line appended to ``path``."""

    kind = "line"
    options = frozenset({"existing"})
    form = "line (file path, existing)"

    @classmethod
    def normalise(cls, value: Mapping[str, Any], task: str) -> dict[str, Any]:
        path = trigger_path(value, "line", task)
        if any(ch in path for ch in "*?["):
            raise SpecError(task, "trigger.line", path, "one file path, not a glob pattern")
        return {"kind": "line", "path": path, "existing": existing_option(value, task)}

    @classmethod
    def build(cls, trigger: Mapping[str, Any], *, key: str, state: TriggerState,
              **common: Any) -> LineTrigger:
        return cls(key, state, trigger["path"], **common)

    def __init__(self, key: str, state: TriggerState, path: str, *, base_dir: str = ".",
                 use_inotify: bool | None = None, auto_commit: bool = True,
                 skip_before: float | None = None) -> None:
        super().__init__(key, state, auto_commit=auto_commit, skip_before=skip_before)
        self.path = os.path.normpath(os.path.join(os.path.abspath(base_dir),
                                                  os.path.expanduser(path)))
        self._key = f"{key}/line"
        self._start_key = f"{key}/line-start"
        self._pos: dict[str, Any] = state.get(self._key) or {}
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._more = False
        if use_inotify is not False:
            self._start_inotify(os.path.dirname(self.path),
                                IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO,
                                required=use_inotify is True)
        self._start_watching()

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
        self._remember_head()
        self._stage(self._key, dict(self._pos))

    def _first_look(self, before: float) -> None:
        """Read on from the end of the last complete line the log held at the start
        (its line numbers still count the lines skipped)."""
        try:
            st = os.stat(self.path)
        except OSError:
            st = None  # a log that appears later is new from its first line
        if st is not None and self._open((st.st_dev, st.st_ino)) and self._pos["offset"] == 0:
            old = self._old_bytes(st, before)
            if old:
                offset, lineno = self._complete_lines(old)
                self._pos.update(offset=offset, lineno=lineno)
                self._remember_head()
                self._stage(self._key, dict(self._pos))
        self._first_look_done()

    def _old_bytes(self, st: os.stat_result, before: float) -> int:
        """How many of the open log's first bytes were there at the start: as noted then
        (if it is the same file: device, inode and first bytes), else all of them if it
        was last modified before ``before``, else none."""
        assert self._fd is not None
        noted = self.state.get(self._start_key)
        if noted is None:
            return st.st_size if st.st_mtime_ns < int(before * 1e9) else 0
        same = [noted.get("dev"), noted.get("ino")] == [st.st_dev, st.st_ino] and \
            _digest(os.pread(self._fd, noted.get("head_len", 0), 0)) == noted.get("head")
        return min(st.st_size, int(noted["size"])) if same else 0

    def _complete_lines(self, size: int) -> tuple[int, int]:
        """(bytes up to the end of the last complete line, lines) in the first ``size``."""
        assert self._fd is not None
        offset = lines = at = 0
        while at < size:
            data = os.pread(self._fd, min(_CHUNK, size - at), at)
            if not data:
                break
            lines += data.count(b"\n")
            last = data.rfind(b"\n")
            if last >= 0:
                offset = at + last + 1
            at += len(data)
        return offset, lines

    def _remember_head(self) -> None:
        """Fingerprint the file's first bytes (up to the offset) to notice a truncation."""
        assert self._fd is not None
        if self._pos.get("head_len", 0) < _HEAD_BYTES:
            head = os.pread(self._fd, min(self._pos["offset"], _HEAD_BYTES), 0)
            self._pos.update(head=_digest(head), head_len=len(head))

    def close(self) -> None:
        super().close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class _Declared(Protocol):
    """A task declaration (a ``TaskSpec``): its name and normalised trigger."""

    @property
    def name(self) -> str: ...

    @property
    def trigger(self) -> dict[str, Any] | None: ...


def note_start(db_path: str | os.PathLike[str], specs: Iterable[_Declared],
               base_dir: str = ".") -> None:
    """Note, in the run database ``db_path``, where the log of each line trigger that
    skips existing lines ends now: the launcher calls it when the run starts, before the
    program runs, so that lines appended before the scheduler watches are told from those
    an earlier run left. An earlier note is kept; a failure is logged, never raised."""
    from odop.tasks.triggers.state import SQLiteTriggerState

    notes: dict[str, Any] = {}
    for spec in specs:
        trigger: Mapping[str, Any] = spec.trigger or {}
        if trigger.get("kind") == "line" and trigger.get("existing", "skip") == "skip":
            path = os.path.join(os.path.abspath(base_dir), os.path.expanduser(trigger["path"]))
            notes[f"{spec.name}/line-start"] = _where_it_ends(path)
    if not notes:
        return
    try:
        state = SQLiteTriggerState(os.fspath(db_path))
        try:
            state.update({k: v for k, v in notes.items() if state.get(k) is None})
        finally:
            state.close()
    except (OSError, sqlite3.Error) as exc:
        log.warning("cannot note where the logs of line triggers end: %s", exc)


def _where_it_ends(path: str) -> dict[str, Any]:
    """The log's size, device, inode and a fingerprint of its first bytes; size 0 when
    there is no such file (then all of it is new)."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return {"size": 0}
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "head": _digest(head),
            "head_len": len(head)}
