"""The sampler contract: one small class per resource family."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any


class Sampler(ABC):
    """Reads one resource family once per tick and returns its section of the sample.

    Implement:

    - ``name``: the key of the section in the sample map (``"system"``, ``"gpu"``, ...).
    - ``sample(now, dt, sections)``: read the counters and return a msgpack-able value
      (maps, lists, str, int, float, bool, None). ``now`` is ``time.monotonic()`` seconds,
      ``dt`` the seconds since the previous tick (since construction on the first tick),
      ``sections`` the sections already produced this tick, in sampler order, so a later
      sampler (power) may use an earlier one's readings (system, gpu).
    - ``close()`` when the sampler holds a handle (NVML, files).
    - optionally ``top_level(section)``: flat keys this sampler adds beside its section
      (``cpu``, ``memory``, ``gpus`` ...: the flat view of docs/observer.md); called
      right after ``sample`` with its result.

    Rates are computed from counters read at the previous tick, which the constructor
    primes, so the first sample already carries rates. A resource that is absent here
    (no GPU, no RAPL) is a normal state: report it as such, never raise.
    Hot path: do once in ``__init__`` everything that can be done once.
    """

    name: str = ""

    @abstractmethod
    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> Any:
        """Return this sampler's section for the tick at ``now`` (monotonic seconds)."""

    def top_level(self, section: Any) -> dict[str, Any]:
        """Flat keys to add to the sample beside this sampler's section (default none)."""
        return {}

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release handles; the default holds none."""
