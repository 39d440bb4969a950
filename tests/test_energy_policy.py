"""Levels, thresholds, concurrency scaling and the power-cap controller."""

from __future__ import annotations

import numpy as np
import pytest

from odop.energy.errors import EnergyConfigError
from odop.energy.forecast import Forecast
from odop.energy.policy import (
    CarbonLevel,
    ConcurrencyScaler,
    LevelClassifier,
    PriorityThresholds,
)
from odop.energy.powercap import CapTask, PowerCapController


def test_levels_from_forecast_quantiles():
    fc = Forecast(np.arange(100) * 60.0, 60.0, np.arange(100.0))
    cls = LevelClassifier.from_forecast(fc)
    assert cls.level(0) is CarbonLevel.VERY_LOW and cls.level(99) is CarbonLevel.VERY_HIGH
    assert cls.level(50) is CarbonLevel.MODERATE
    assert CarbonLevel.parse("very low") is CarbonLevel.VERY_LOW
    with pytest.raises(EnergyConfigError, match="allowed"):
        CarbonLevel.parse("green")


def test_priority_thresholds():
    th = PriorityThresholds({0: "low", 5: "high"}, default="very_low")
    assert th.threshold(-1) is CarbonLevel.VERY_LOW and th.threshold(3) is CarbonLevel.LOW
    assert th.allows(7, CarbonLevel.HIGH) and not th.allows(7, CarbonLevel.VERY_HIGH)


def test_concurrency_scaling_defaults_and_config():
    sc = ConcurrencyScaler()
    assert [sc.limit(8, lv) for lv in CarbonLevel] == [8, 8, 8, 4, 2]
    assert sc.limit(2, CarbonLevel.VERY_HIGH) == 1  # min_slots
    assert sc.limit(0, CarbonLevel.VERY_HIGH) == 0  # never more than there is
    assert ConcurrencyScaler({CarbonLevel.HIGH: 0.0}, min_slots=0).limit(8, CarbonLevel.HIGH) == 0
    with pytest.raises(EnergyConfigError, match="between 0 and 1"):
        ConcurrencyScaler({CarbonLevel.LOW: 1.5})


def tasks(paused: set[str] = frozenset()) -> list[CapTask]:
    return [CapTask("hi", 9, True, 0, "hi" in paused, 50),
            CapTask("lo-old", 1, True, 0, "lo-old" in paused, 50),
            CapTask("lo-new", 1, True, 90, "lo-new" in paused, 50),
            CapTask("young", 0, True, 95, "young" in paused, 50),
            CapTask("pinned", 0, False, 0, "pinned" in paused, 50)]


def test_power_cap_pauses_lowest_priority_then_newest_respecting_min_runtime():
    ctl = PowerCapController(cap_w=400, resume_w=300, min_runtime_s=10)
    assert ctl.decide(420, tasks(), now=100).pause == ("lo-new",)
    assert ctl.decide(480, tasks(), now=100).pause == ("lo-new", "lo-old")
    assert "young" not in ctl.decide(600, tasks(), now=100).pause  # ran 5 s < 10 s
    assert "pinned" not in ctl.decide(600, tasks(), now=200).pause  # not stoppable


def test_power_cap_hysteresis():
    ctl = PowerCapController(cap_w=400, resume_w=300, min_runtime_s=10)
    paused = tasks({"lo-new", "hi"})
    assert ctl.decide(350, paused, 100).resume == ()  # between thresholds: hold
    assert ctl.decide(350, paused, 100).pause == ()
    assert ctl.decide(260, paused, 100).resume == ()  # 50 W would pass 300 W? no: 260+50>300
    assert ctl.decide(240, paused, 100).resume == ("hi",)
    assert ctl.decide(100, paused, 100).resume == ("hi", "lo-new")
    with pytest.raises(EnergyConfigError):
        PowerCapController(cap_w=400, resume_w=450)
