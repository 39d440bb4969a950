"""The scheduler's view of the grid signal: read from the provider at most every
``check_s`` seconds, as a :class:`View` of the slot in force, its carbon level and the
forecast it comes from. A forecast that only moved on in time keeps its generation, so
plans made on it stand.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from odop.energy.errors import EnergyError
from odop.energy.forecast import Forecast
from odop.energy.policy import CarbonLevel, LevelClassifier
from odop.energy.settings import EnergySettings
from odop.energy.signals import SignalProvider

log = logging.getLogger("odop.scheduler.energy")


@dataclass(frozen=True)
class View:
    """The forecast as of one slot: its levels and the signal in force over the slot."""

    forecast: Forecast
    gen: int
    slot_start: float
    slot_end: float
    classifier: LevelClassifier | None  # None: a flat signal (no levels to tell apart)
    level: CarbonLevel
    carbon: float | None
    price: float | None


class Outlook:
    """The current :class:`View` of one provider's signal (None while it is unusable)."""

    def __init__(self, settings: EnergySettings, provider: SignalProvider) -> None:
        self.settings, self.provider, self.kind = settings, provider, settings.signal_kind
        self._view: View | None = None
        self._checked_at = -math.inf
        self._gen = 0
        self._key: tuple | None = None
        self.error: str | None = None
        """Why the signal is unusable now, if it is."""

    def read(self, now: float) -> View | None:
        view = self._view
        if view is not None and now - self._checked_at < self.settings.check_s \
                and view.slot_start <= now < view.slot_end:
            return view
        self._checked_at = now
        try:
            fc = self.provider.forecast(now, self.settings.horizon_s)
            if not fc.has(self.kind):
                raise EnergyError(f"{fc.source} has no {self.kind} values")
            self._view, self.error = self._make_view(fc, now, view), None
        except (EnergyError, ValueError, ArithmeticError) as exc:
            if self.error != str(exc):
                log.warning("energy signal unusable, scheduling as without one: %s", exc)
            self.error, self._view = str(exc), None
        return self._view

    def _make_view(self, fc: Forecast, now: float, old: View | None) -> View:
        """A new view when the forecast or the slot changed, else the old one."""
        values = fc.values(self.kind)
        key = (fc.source, float(fc.start[0]), fc.resolution_s, values.size, values.tobytes())
        idx = int(np.clip((now - fc.start[0]) // fc.resolution_s, 0, values.size - 1))
        slot_start = float(fc.start[0] + idx * fc.resolution_s)
        slot_end = slot_start + fc.resolution_s
        if slot_end <= now:  # past the last slot: the value is held
            slot_start, slot_end = now, now + self.settings.check_s
        if key == self._key and old is not None and old.slot_start <= now < old.slot_end:
            return old
        if key != self._key:
            self._key = key
            if old is None or not _extends(old.forecast, fc, self.kind):
                self._gen += 1  # plans re-made; a forecast that only moved on keeps them
        flat = float(np.ptp(values)) <= 1e-9 * max(1.0, float(np.abs(values).max()))
        classifier = None if flat else LevelClassifier.from_forecast(
            fc, self.kind, self.settings.level_quantiles)
        level = CarbonLevel.MODERATE if classifier is None else classifier.level(values[idx])
        point = fc.point(slot_start)
        return View(fc, self._gen, min(slot_start, now), slot_end,
                     classifier, level, point.carbon, point.price)

    def level(self, now: float) -> CarbonLevel:
        """The level of the signal now (MODERATE when flat or unavailable)."""
        view = self.read(now)
        return CarbonLevel.MODERATE if view is None else view.level


def _extends(old: Forecast, new: Forecast, kind: str) -> bool:
    """Whether ``new`` is ``old`` moved on in time: same source and slot grid, a later or
    equal first slot, and the same values wherever both have slots."""
    res = old.resolution_s
    if new.source != old.source or new.resolution_s != res or new.start[0] < old.start[0]:
        return False
    shift = (new.start[0] - old.start[0]) / res
    if abs(shift - round(shift)) > 1e-9:
        return False
    k = int(round(shift))
    a, b = old.values(kind)[k:], new.values(kind)
    n = min(a.size, b.size)
    return bool(np.array_equal(a[:n], b[:n]))
