"""Power sampler: node watts per domain and energy since the observer started."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from odop_obs.power import NvmlPower, RaplSource, ReplayPower, UtilisationModel
from odop_obs.power.base import DOMAINS, PowerSource
from odop_obs.power.replay import ENV
from odop_obs.samplers.base import Sampler

log = logging.getLogger(__name__)


def default_sources() -> list[PowerSource]:
    """RAPL, then NVML, then the utilisation model: measurements before estimates; only
    the trace named by ``ODOP_POWER_TRACE`` when it is set (see odop_obs.power.replay)."""
    trace = os.environ.get(ENV)
    if trace:
        return [ReplayPower(trace)]
    return [RaplSource(), NvmlPower(), UtilisationModel()]


class PowerSampler(Sampler):
    """Combines power sources; for each domain the first source that reports it wins.

    Section ``power``::

        watts:    {cpu, dram, gpu, total}  mean watts over the tick (absent domain: 0)
        sources:  {domain: source name}    which source measured each reported domain
        energy_j: {cpu, dram, gpu, total}  joules since the observer started
        source:   "rapl", "nvml", "model" or a combination ("rapl+nvml"): every source
                  that reported this tick, in priority order
        zones:    {zone: watts} the measured zones (RAPL zones) of this tick
        problems: [str] new problems (unreadable counter files ...), each reported once
                  here and logged once as a warning (the agent's log, or stderr)

    Runs after the ``system`` and ``gpu`` samplers, whose sections the model and NVML
    sources read. Consumers take energy over an interval as the difference of two
    ``energy_j`` readings, which stays right when samples are missed.
    """

    name = "power"

    def __init__(self, sources: Sequence[PowerSource] | None = None) -> None:
        self.sources = list(sources) if sources is not None else default_sources()
        self._energy = dict.fromkeys((*DOMAINS, "total"), 0.0)

    def sample(self, now: float, dt: float, sections: Mapping[str, Any]) -> dict[str, Any]:
        watts = dict.fromkeys(DOMAINS, 0.0)
        used: dict[str, str] = {}
        for source in self.sources:
            for domain, w in source.read(dt, sections).items():
                if domain not in used:
                    watts[domain], used[domain] = w, source.name
        watts["total"] = sum(watts[d] for d in DOMAINS)
        for key, w in watts.items():
            self._energy[key] += w * dt
        return {
            "watts": {k: round(w, 3) for k, w in watts.items()},
            "sources": used,
            "energy_j": {k: round(e, 3) for k, e in self._energy.items()},
            "source": "+".join(s.name for s in self.sources if s.name in used.values()),
            "zones": {z: w for s in self.sources for z, w in getattr(s, "zones", {}).items()},
            "problems": self._problems(),
        }

    def _problems(self) -> list[str]:
        new: list[str] = []
        for source in self.sources:
            problems = getattr(source, "problems", None)
            if problems:
                new.extend(problems)
                problems.clear()
        for problem in new:
            log.warning("power: %s", problem)
        return new

    def close(self) -> None:
        for source in self.sources:
            source.close()
