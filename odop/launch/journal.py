"""A rank's submission journal: an append-only file in ``<run>/journal/``.

Each record is a 4-byte big-endian length and a msgpack map: ``{"s": message}`` for a
submission, ``{"a": id}`` when the scheduler acknowledged it. Writing a record is one
``write`` on an ``O_APPEND`` descriptor (no fsync): cheap enough for ``odop.submit``, and it
keeps what the scheduler has not confirmed readable after a crash (:func:`pending`).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import msgpack

_LEN = struct.Struct(">I")


class Journal:
    """Appends submissions and acknowledgements; never raises on a full disk."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        self.fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.failed = 0

    def _append(self, record: dict[str, Any]) -> None:
        if self.fd is None:
            return
        data = msgpack.packb(record, use_bin_type=True)
        try:
            os.write(self.fd, _LEN.pack(len(data)) + data)
        except OSError:
            self.failed += 1

    def submitted(self, msg: dict[str, Any]) -> None:
        self._append({"s": msg})

    def acked(self, msg_id: str) -> None:
        self._append({"a": msg_id})

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read(path: Path) -> list[dict[str, Any]]:
    """Every whole record of a journal (a torn last record is skipped)."""
    data = path.read_bytes()
    out, pos = [], 0
    while pos + _LEN.size <= len(data):
        (size,) = _LEN.unpack_from(data, pos)
        chunk = data[pos + _LEN.size:pos + _LEN.size + size]
        if len(chunk) < size:
            break
        try:
            out.append(msgpack.unpackb(chunk, raw=False))
        except (ValueError, msgpack.UnpackException):
            break
        pos += _LEN.size + size
    return out


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
    """Unacknowledged submissions of every journal of a run."""
    out: list[dict[str, Any]] = []
    for path in sorted((run_root / "journal").glob("*.jnl")):
        out.extend(pending(path))
    return out
