"""Where the demo simulation puts its files inside an output folder.

``<out>/snapshots/snap_<step>.npy``   the global field after ``step`` steps (float64)
``<out>/reduce/snap_<step>.json``     statistics written by the ``reduce`` task
``<out>/compress/snap_<step>.npy.xz`` the snapshot's bytes, xz-compressed, by ``compress``
``<out>/manifest.json``               the run's parameters and checksum (rank 0)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SNAPSHOTS = "snapshots"
REDUCE = "reduce"
COMPRESS = "compress"
MANIFEST = "manifest.json"

_SNAP_RE = re.compile(r"^snap_(\d{6,})\.npy$")


def snapshot_name(step: int) -> str:
    """File name of the snapshot taken after ``step`` steps."""
    return f"snap_{step:06d}.npy"


def snapshot_path(out: str | Path, step: int) -> Path:
    return Path(out) / SNAPSHOTS / snapshot_name(step)


def reduce_path(out: str | Path, snapshot: str | Path) -> Path:
    """The ``reduce`` output for a snapshot file."""
    return Path(out) / REDUCE / (Path(snapshot).stem + ".json")


def compress_path(out: str | Path, snapshot: str | Path) -> Path:
    """The ``compress`` output for a snapshot file."""
    return Path(out) / COMPRESS / (Path(snapshot).name + ".xz")


def list_snapshots(out: str | Path) -> list[Path]:
    """Snapshot files in ``out``, in step order."""
    folder = Path(out) / SNAPSHOTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _SNAP_RE.match(p.name)]
    return sorted(found, key=lambda p: int(_SNAP_RE.match(p.name).group(1)))  # type: ignore[union-attr]


def prepare(out: str | Path) -> None:
    """Create the sub-folders and remove files a previous run left in them.

    Only files that follow this layout's naming are removed; anything else in
    ``out`` is left alone.
    """
    root = Path(out)
    for sub, suffixes in ((SNAPSHOTS, (".npy",)), (REDUCE, (".json",)), (COMPRESS, (".xz",))):
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        for p in folder.iterdir():
            if p.name.startswith("snap_") and p.name.endswith(suffixes) and p.is_file():
                p.unlink()
    (root / MANIFEST).unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
