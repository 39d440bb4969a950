"""The power-source contract."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

DOMAINS = ("cpu", "dram", "gpu")


class PowerSource(ABC):
    """Reports the mean power of one or more domains over the last tick.

    Implement:

    - ``name``: how the sample names the source (``"rapl"``, ``"nvml"``, ``"model"``).
    - ``read(dt, sections)``: a map ``{domain: watts}`` for the domains this source can
      measure now (a subset of DOMAINS: ``cpu``, ``dram``, ``gpu``), averaged over the
      ``dt`` seconds since the previous call; an empty map when it can measure nothing
      (no permission, no device). ``sections`` holds this tick's other sampler sections
      (``system``, ``gpu``) for sources derived from them. Never raise for absence.
    - ``close()`` when it holds file descriptors.
    - optionally append to ``problems`` (strings: an unreadable file, a lost device);
      the power sampler reports each once, then clears the list. ``zones`` may hold
      the last tick's watts per measured zone (RAPL zone, GPU).

    Sources are tried in order per domain: the first that reports a domain wins, so a
    measurement (RAPL) comes before a model.
    """

    name: str = ""
    problems: list[str]
    zones: dict[str, float]

    def __init__(self) -> None:
        self.problems = []
        self.zones = {}

    @abstractmethod
    def read(self, dt: float, sections: Mapping[str, Any]) -> dict[str, float]:
        """Mean watts per domain over the last ``dt`` seconds."""

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release handles; the default holds none."""
