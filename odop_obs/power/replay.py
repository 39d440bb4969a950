"""A recorded node power trace played back as the node's power (what-if runs, tests).

The file is CSV with a header ``t,watts``: unix seconds and the node's watts from then
on (each value holds until the next; before the first, the first). Set
``ODOP_POWER_TRACE=/path/trace.csv`` and the observer reports it, labelled ``replay``,
instead of measuring: a power cap can then be exercised on any machine.
"""

from __future__ import annotations

import bisect
import csv
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from odop_obs.errors import ObsConfigError
from odop_obs.power.base import PowerSource

ENV = "ODOP_POWER_TRACE"
"""Environment variable naming a power trace to replay instead of measuring."""


class ReplayPower(PowerSource):
    """Node watts from a ``t,watts`` CSV file, reported as the ``cpu`` domain."""

    name = "replay"

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.times, self.watts = _load(Path(path))

    def read(self, dt: float, sections: Mapping[str, Any]) -> dict[str, float]:
        i = max(0, bisect.bisect_right(self.times, self.clock()) - 1)
        return {"cpu": self.watts[i]}


def _load(path: Path) -> tuple[list[float], list[float]]:
    try:
        with path.open(newline="") as fh:
            rows = sorted((float(r["t"]), float(r["watts"])) for r in csv.DictReader(fh))
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ObsConfigError(ENV, str(path), f"a readable CSV file with columns t,watts ({exc})"
                             ) from None
    if not rows:
        raise ObsConfigError(ENV, str(path), "a CSV file with at least one t,watts row")
    return [t for t, _ in rows], [w for _, w in rows]
