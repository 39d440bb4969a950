"""Appends samples to a folder as length-prefixed msgpack records.

File ``<folder>/<node>.obs.msgpack``::

    b"ODOPOBS1"                                   8-byte magic, once
    then per sample: <u32 length><u32 crc32>       little-endian, of the payload
                     <msgpack map>                 the sample

Each record is one ``write`` on an ``O_APPEND`` descriptor, so a killed observer
(even SIGKILL) loses nothing it already emitted; only a crash inside that write can
leave a torn last record, which readers skip and the next Recorder on the file cuts
off before appending. fsync policy: ``os.fsync`` every ``fsync_s`` seconds (10 s by
default; 0 = after every record) and on close, so a power loss or kernel crash loses
at most the last ``fsync_s`` seconds. Reading back: odop_obs.reader.
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack

from odop_obs.errors import ObsError

MAGIC = b"ODOPOBS1"
SUFFIX = ".obs.msgpack"
HEADER = struct.Struct("<II")  # payload length (bytes), crc32 of the payload


def record_path(folder: str | os.PathLike[str], node: str) -> Path:
    """Where ``node``'s samples go in ``folder``."""
    return Path(folder) / f"{node}{SUFFIX}"


def frame(payload: bytes) -> bytes:
    """One record: header then payload."""
    return HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def whole_length(data: bytes) -> int:
    """Bytes of ``data`` (a record file) up to the end of its last whole record."""
    end, size = len(MAGIC), len(data)
    while end + HEADER.size <= size:
        length, _ = HEADER.unpack_from(data, end)
        if end + HEADER.size + length > size:
            break
        end += HEADER.size + length
    return end


class Recorder:
    """Appends each sample to ``<folder>/<node>.obs.msgpack`` (the run's samples folder).

    ``fsync_s``: seconds between fsyncs (0: every record). A torn tail left by a
    crash is truncated on open, before anything is appended.
    """

    def __init__(self, run_dir: str | os.PathLike[str], node: str, fsync_s: float = 10.0) -> None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        self.path = record_path(run_dir, node)
        self.fsync_s = fsync_s
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._repair()
        self._packer = msgpack.Packer()
        self._synced = time.monotonic()
        self.written = 0

    def _repair(self) -> None:
        size = os.fstat(self._fd).st_size
        if size == 0:
            os.write(self._fd, MAGIC)
            return
        data = os.pread(self._fd, size, 0)
        if not data.startswith(MAGIC):
            os.close(self._fd)
            raise ObsError(f"{self.path} is not an odop_obs record file (magic {MAGIC!r})")
        end = whole_length(data)
        if end < size:
            os.ftruncate(self._fd, end)

    def emit(self, sample: Mapping[str, Any]) -> None:
        os.write(self._fd, frame(self._packer.pack(sample)))
        self.written += 1
        now = time.monotonic()
        if now - self._synced >= self.fsync_s:
            os.fsync(self._fd)
            self._synced = now

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
