"""Reads recorded samples back: as dicts, or as numpy arrays for analysis."""

from __future__ import annotations

import heapq
import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

from odop_obs.errors import ObsConfigError
from odop_obs.recorder import HEADER, MAGIC, SUFFIX
from odop_obs.schema import validate_sample


def record_files(path: str | os.PathLike[str]) -> list[Path]:
    """The record files at ``path``: one file, a samples folder, or a run folder.

    A folder holds ``*.obs.msgpack`` (or its ``samples/`` subfolder does); older
    JSON-lines records (``obs/*.jsonl``) are found too. Raises ObsConfigError if none.
    """
    p = Path(path)
    if p.is_file():
        return [p]
    for folder, pattern in ((p, f"*{SUFFIX}"), (p / "samples", f"*{SUFFIX}"),
                            (p, "*.jsonl"), (p / "obs", "*.jsonl"),
                            (p / "samples" / "obs", "*.jsonl")):
        files = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if files:
            return files
    raise ObsConfigError("path", str(path), f"a record file or a folder holding *{SUFFIX}")


def _records(f: Any) -> Iterator[bytes]:
    """Payloads of whole records with a matching CRC; stops at a torn last record."""
    if f.read(len(MAGIC)) != MAGIC:
        return
    while len(head := f.read(HEADER.size)) == HEADER.size:
        length, crc = HEADER.unpack(head)
        payload = f.read(length)
        if len(payload) < length:
            return  # torn: the writer died inside its last write
        if zlib.crc32(payload) == crc:
            yield payload


def _read_file(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as f:
        lines = path.suffix == ".jsonl"
        for raw in f if lines else _records(f):
            try:
                msg = json.loads(raw) if lines else msgpack.unpackb(raw, raw=False)
                yield validate_sample(msg)
            except (ValueError, msgpack.UnpackException, struct.error):
                continue  # a torn JSON line, an invalid sample: skipped


def read_samples(path: str | os.PathLike[str], node: str | None = None) -> Iterator[dict[str, Any]]:
    """Every whole, valid sample at ``path`` (file, samples folder or run folder).

    Several files (nodes) are merged in time order; ``node`` keeps one node's.
    """
    streams = [_read_file(f) for f in record_files(path)]
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda s: s["t"])
    for sample in merged:
        if node is None or sample["node"] == node:
            yield sample
