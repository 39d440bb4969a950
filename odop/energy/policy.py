"""Carbon levels and the decisions that hang on them (pure, no I/O).

Levels come from quantiles of the forecast's own distribution (default 20/40/60/80 %),
so 'very low' means 'among the cleanest fifth of the coming hours' on any grid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from odop.energy.errors import EnergyConfigError
from odop.energy.forecast import Forecast


class CarbonLevel(IntEnum):
    """Five bands of the signal, cleanest first."""

    VERY_LOW = 0
    LOW = 1
    MODERATE = 2
    HIGH = 3
    VERY_HIGH = 4

    @classmethod
    def parse(cls, value: str | int | CarbonLevel) -> CarbonLevel:
        """A level from its name ('very low', 'very_low', 'LOW') or its number."""
        if isinstance(value, (int, CarbonLevel)):
            return cls(value)
        key = str(value).strip().upper().replace(" ", "_").replace("-", "_")
        if key not in cls.__members__:
            raise EnergyConfigError(
                f"carbon level {value!r} is unknown; allowed: {', '.join(cls.__members__)}")
        return cls[key]


@dataclass(frozen=True)
class LevelClassifier:
    """Maps a signal value to a CarbonLevel by four ascending cut points."""

    cuts: tuple[float, float, float, float]

    @classmethod
    def from_forecast(cls, forecast: Forecast, kind: str = "carbon",
                      quantiles: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)) -> LevelClassifier:
        """Cut points at ``quantiles`` of the forecast's slot values."""
        if len(quantiles) != 4 or list(quantiles) != sorted(quantiles):
            raise EnergyConfigError(f"level quantiles {quantiles!r}: need 4 ascending values")
        q = np.quantile(forecast.values(kind), quantiles)
        return cls((float(q[0]), float(q[1]), float(q[2]), float(q[3])))

    def level(self, value: float) -> CarbonLevel:
        """The band of ``value`` (a value on a cut point goes to the lower band)."""
        return CarbonLevel(int(np.searchsorted(self.cuts, value, side="left")))


@dataclass(frozen=True)
class PriorityThresholds:
    """Highest level at which a task of a given priority may start (higher = more urgent).

    ``mapping`` {min_priority: level}: a priority uses the entry with the largest key
    not above it; below every key, ``default``. E.g. {0: 'low', 5: 'high',
    10: 'very high'}: background work waits for clean power, urgent work never waits.
    """

    mapping: Mapping[int, CarbonLevel | str] = field(default_factory=lambda: {
        0: CarbonLevel.MODERATE, 5: CarbonLevel.HIGH, 10: CarbonLevel.VERY_HIGH})
    default: CarbonLevel | str = CarbonLevel.LOW

    def threshold(self, priority: int) -> CarbonLevel:
        """The highest level allowed for ``priority``."""
        keys = [k for k in sorted(self.mapping) if k <= priority]
        return CarbonLevel.parse(self.mapping[keys[-1]] if keys else self.default)

    def allows(self, priority: int, level: CarbonLevel) -> bool:
        """Whether a task of ``priority`` may start at ``level``."""
        return level <= self.threshold(priority)


DEFAULT_SCALING = {CarbonLevel.VERY_LOW: 1.0, CarbonLevel.LOW: 1.0, CarbonLevel.MODERATE: 1.0,
                   CarbonLevel.HIGH: 0.5, CarbonLevel.VERY_HIGH: 0.25}


@dataclass(frozen=True)
class ConcurrencyScaler:
    """How much of what odop could use it may use at a level: floor(base x factor), at
    least ``min_slots`` and never more than ``base``. Factors are shares, in [0, 1]."""

    factors: Mapping[CarbonLevel, float] = field(default_factory=lambda: dict(DEFAULT_SCALING))
    min_slots: int = 1

    def __post_init__(self) -> None:
        for level, factor in self.factors.items():
            if not 0 <= factor <= 1:
                raise EnergyConfigError(f"concurrency factor for {level.name} = {factor}; "
                                        "must be a share between 0 and 1")

    def limit(self, base: int, level: CarbonLevel) -> int:
        """Of ``base`` (cores, tasks), how many may be used at once at ``level``."""
        factor = self.factors.get(level, 1.0)
        return min(base, max(self.min_slots, math.floor(base * factor + 1e-9)))
