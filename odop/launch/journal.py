"""A rank's submission journal: an append-only file in ``<run>/journal/``.

Each record is a 4-byte big-endian length and a msgpack map: ``{"s": message}`` for a
submission, ``{"a": id}`` when the scheduler acknowledged it. Writing a record is one
``write`` on an ``O_APPEND`` descriptor (no fsync): cheap enough for ``odop.submit``, and it
keeps what the scheduler has not confirmed readable after a crash (:func:`pending`).
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import msgpack

_LEN = struct.Struct(">I")


class Journal:
    """Appends submissions and acknowledgements; never raises. Where its file cannot be
    written (a read-only or full run folder), it goes on in a private folder of the
    node's temporary space (:func:`fallback_path`); records neither place took are
    counted in ``failed``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.failed = 0
        self.moved = False
        """True once the journal writes to its fallback file."""
        self.segments: list[Path] = [path]
        """The files written so far, in order (the fallback second)."""
        try:
            self.fd = _open(path)
        except OSError:
            self._move()

    def _move(self) -> None:
        """Go on in the fallback file (once); on failure every later record fails."""
        if self.moved:
            return
        self.moved = True
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        fallback = fallback_path(self.path)
        try:
            self.fd = _open(fallback)
            self.path = fallback
            self.segments.append(fallback)
        except OSError:
            self.fd = None

    def _append(self, record: dict[str, Any]) -> bool:
        data = msgpack.packb(record, use_bin_type=True)
        for _ in range(2):
            if self.fd is None:
                break
            try:
                os.write(self.fd, _LEN.pack(len(data)) + data)
                return True
            except OSError:
                self._move()
        self.failed += 1
        return False

    def submitted(self, msg: dict[str, Any]) -> bool:
        """Record a submission; False when no place could take it."""
        return self._append({"s": msg})

    def acked(self, msg_id: str) -> None:
        self._append({"a": msg_id})

    def tell(self) -> Cursor:
        """Where the next record will be written (to read the records from there on)."""
        if self.fd is None:
            return Cursor(len(self.segments), 0)
        return Cursor(len(self.segments) - 1, os.lseek(self.fd, 0, os.SEEK_END))

    def submissions_from(self, cursor: Cursor, limit: int) -> tuple[list[dict[str, Any]], Cursor]:
        """Up to ``limit`` submissions written at or after ``cursor``, and the cursor just
        past the last one read; reads about ``limit`` records, whatever the file's size."""
        out: list[dict[str, Any]] = []
        while len(out) < limit and cursor.segment < len(self.segments):
            try:
                records, offset = _read_at(self.segments[cursor.segment], cursor.offset,
                                           limit - len(out))
            except OSError:
                records, offset = [], cursor.offset
            out.extend(r["s"] for r in records if "s" in r)
            if records:
                cursor = Cursor(cursor.segment, offset)
            elif cursor.segment + 1 < len(self.segments):
                cursor = Cursor(cursor.segment + 1, 0)
            else:
                break
        return out, cursor

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Cursor(NamedTuple):
    """A place in a journal: the index of its file (``Journal.segments``), a byte offset."""

    segment: int
    offset: int


READ_BLOCK = 64 * 1024
"""Bytes read at a time when records are read back from an offset."""


def _read_at(path: Path, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` whole records from ``offset`` of ``path``; the offset after them."""
    out: list[dict[str, Any]] = []
    with open(path, "rb") as f:
        f.seek(offset)
        data = b""
        while len(out) < limit:
            more = f.read(READ_BLOCK)
            data += more
            pos = 0
            while len(out) < limit and pos + _LEN.size <= len(data):
                (size,) = _LEN.unpack_from(data, pos)
                if pos + _LEN.size + size > len(data):
                    break
                try:
                    out.append(msgpack.unpackb(data[pos + _LEN.size:pos + _LEN.size + size],
                                               raw=False))
                except (ValueError, msgpack.UnpackException):
                    return out, offset + pos  # a damaged record: nothing after it is read
                pos += _LEN.size + size
            offset, data = offset + pos, data[pos:]
            if not more:
                break
    return out, offset


def _open(path: Path) -> int:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def fallback_path(path: Path) -> Path:
    """Where the journal at ``path`` goes on when its run folder takes no more:
    ``$TMPDIR/odop-<uid>/journal/<run>/<file>`` (node-local; private to the user)."""
    run = path.parent.parent.name
    return Path(tempfile.gettempdir()) / f"odop-{os.getuid()}" / "journal" / run / path.name


def read(path: Path) -> list[dict[str, Any]]:
    """Every whole record of a journal (a torn last record is skipped)."""
    return _read_at(path, 0, sys.maxsize)[0]


def pending(path: Path) -> list[dict[str, Any]]:
    """Submissions of a journal that were never acknowledged, in order."""
    subs: dict[str, dict[str, Any]] = {}
    for record in read(path):
        if "s" in record:
            subs[record["s"]["id"]] = record["s"]
        elif "a" in record:
            subs.pop(record["a"], None)
    return list(subs.values())


def pending_in_run(run_root: Path) -> list[dict[str, Any]]:
    """Unacknowledged submissions of every journal of a run this node sees: in the run
    folder, and gone on in this node's fallback folder (:func:`fallback_path`)."""
    fallback = fallback_path(run_root / "journal" / "x").parent
    out: list[dict[str, Any]] = []
    for path in [*sorted((run_root / "journal").glob("*.jnl")), *sorted(fallback.glob("*.jnl"))]:
        out.extend(pending(path))
    return out
