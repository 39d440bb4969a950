"""Appends samples to the run folder as JSON lines, and reads them back."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from odop_obs.schema import validate_sample


class Recorder:
    """Appends one JSON line per sample to ``<run_dir>/obs/<node>.jsonl``.

    Each sample is one ``write`` of a whole line, flushed at once, so a reader (or a
    crash) sees whole lines only, save at most the last. JSON keeps the file readable
    with ordinary tools; ``read_samples`` loads it back.
    """

    def __init__(self, run_dir: str | os.PathLike[str], node: str) -> None:
        folder = Path(run_dir) / "obs"
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{node}.jsonl"
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (held open)
        self._encoder = json.JSONEncoder(separators=(",", ":"))

    def emit(self, sample: Mapping[str, Any]) -> None:
        self._file.write(self._encoder.encode(sample) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_samples(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The valid samples of a recorder file, in order; a torn or invalid line is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                yield validate_sample(json.loads(line))
            except ValueError:  # json.JSONDecodeError and SampleError are ValueErrors
                continue
