"""ReplayPower: a recorded node power trace played back, and chosen by ODOP_POWER_TRACE."""

from __future__ import annotations

from pathlib import Path

import pytest

from odop_obs.errors import ObsConfigError
from odop_obs.power.replay import ReplayPower
from odop_obs.samplers.power import PowerSampler


def test_each_value_holds_until_the_next(tmp_path: Path) -> None:
    trace = tmp_path / "p.csv"
    trace.write_text("t,watts\n100,50\n110,150\n")
    now = [90.0]
    source = ReplayPower(trace, clock=lambda: now[0])
    readings = []
    for now[0] in (90.0, 105.0, 110.0, 500.0):
        readings.append(source.read(1.0, {})["cpu"])
    assert readings == [50.0, 50.0, 150.0, 150.0]


def test_the_environment_variable_replaces_the_measured_sources(tmp_path: Path,
                                                                monkeypatch) -> None:
    trace = tmp_path / "p.csv"
    trace.write_text("t,watts\n0,123\n")
    monkeypatch.setenv("ODOP_POWER_TRACE", str(trace))
    section = PowerSampler().sample(1.0, 1.0, {})
    assert section["watts"]["total"] == 123.0 and section["source"] == "replay"


@pytest.mark.parametrize("text", ["", "t,watts\n", "time,w\n0,1\n", "t,watts\n0,lots\n"])
def test_a_bad_trace_is_refused_with_what_is_allowed(tmp_path: Path, text: str) -> None:
    trace = tmp_path / "p.csv"
    trace.write_text(text)
    with pytest.raises(ObsConfigError, match="ODOP_POWER_TRACE.*t,watts"):
        ReplayPower(trace)
