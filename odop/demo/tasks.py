"""Post-processing tasks of the demo simulation: ``reduce`` and ``compress``.

Both are pure functions of one snapshot file (``.npy``, float64, 2-D), so their
outputs can be recomputed and checked (see :mod:`odop.demo.verify`). Each costs a
fraction of a CPU second on a 512 x 512 snapshot. Outputs are written atomically.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from odop import task as _task
from odop.demo.layout import write_atomic

SMOOTH_LEVELS = (1, 2, 4, 8, 16, 32, 64)
"""Numbers of smoothing passes after which ``reduce`` records the field's spread."""

XZ_FILTERS = [{"id": lzma.FILTER_DELTA, "dist": 8}, {"id": lzma.FILTER_LZMA2, "preset": 6}]
"""xz filter chain of ``compress``: byte delta at the float64 stride, then LZMA2."""


def field_digest(field: np.ndarray) -> str:
    """First 16 hex digits of the SHA-256 of a float64 C-ordered array's bytes."""
    data = np.ascontiguousarray(field, dtype=np.float64).tobytes()
    return hashlib.sha256(data).hexdigest()[:16]


def downsample2(field: np.ndarray) -> np.ndarray:
    """Mean over 2 x 2 blocks (a trailing odd row or column is dropped)."""
    h, w = field.shape[0] // 2 * 2, field.shape[1] // 2 * 2
    f = field[:h, :w]
    return (f[0::2, 0::2] + f[1::2, 0::2] + f[0::2, 1::2] + f[1::2, 1::2]) / 4.0


def _smooth(f: np.ndarray) -> np.ndarray:
    """One 5-point averaging pass with edge replication."""
    p = np.pad(f, 1, mode="edge")
    return (p[1:-1, 1:-1] + p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]) / 5.0


def snapshot_stats(field: np.ndarray) -> dict[str, Any]:
    """Statistics that ``reduce`` writes: plain JSON types only."""
    stats: dict[str, Any] = {
        "shape": [int(n) for n in field.shape],
        "min": float(field.min()),
        "max": float(field.max()),
        "mean": float(field.mean()),
        "std": float(field.std()),
        "down2_checksum": field_digest(downsample2(field)),
    }
    spread, f = {}, field
    for n in range(1, SMOOTH_LEVELS[-1] + 1):
        f = _smooth(f)
        if n in SMOOTH_LEVELS:
            spread[str(n)] = float(f.std())
    stats["smoothed_std"] = spread
    return stats


def stats_json(stats: dict[str, Any]) -> bytes:
    """The exact bytes ``reduce`` writes for ``stats``."""
    return (json.dumps(stats, sort_keys=True) + "\n").encode()


def xz_bytes(data: bytes) -> bytes:
    """``data`` compressed with :data:`XZ_FILTERS` (an ordinary .xz stream)."""
    return lzma.compress(data, format=lzma.FORMAT_XZ, filters=XZ_FILTERS)


def load_snapshot(path: str | Path) -> np.ndarray:
    """A snapshot as a float64 2-D array."""
    with open(path, "rb") as fh:
        return np.load(io.BytesIO(fh.read()), allow_pickle=False)


@_task(name="reduce", time="30s", cpus=1, memory="256M")
def reduce(path: str, out: str) -> None:
    """Write statistics of the snapshot at ``path`` as JSON to ``out``."""
    write_atomic(out, stats_json(snapshot_stats(load_snapshot(path))))


@_task(name="compress", time="30s", cpus=1, memory="256M")
def compress(path: str, out: str) -> None:
    """Write an xz-compressed copy of the snapshot file's bytes to ``out``."""
    write_atomic(out, xz_bytes(Path(path).read_bytes()))


TASKS: dict[str, Callable[..., Any]] = {"reduce": reduce, "compress": compress}
"""Task name -> function, for running them in-process (mode ``after``)."""
