"""EnergyPolicy: deferral, thresholds, concurrency, power cap, footprint, status, config."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from odop.energy.advisor import EnergyPolicy
from odop.energy.errors import EnergyConfigError
from odop.energy.powercap import CapTask
from odop.errors import ConfigError

H = 3600.0
T0 = 1_700_000_000.0 - 1_700_000_000.0 % H  # an hour boundary
# hourly gCO2/kWh: falling to 340 by hour 4, a dip at hours 5-6, high again after
CURVE = [400, 380, 360, 350, 340, 100, 100, 420, 450, 480, 500, 460] + [400] * 12


def replay(tmp_path: Path, values: list[float] = CURVE) -> str:
    path = tmp_path / "grid.csv"
    rows = "\n".join(f"{T0 + i * H:.0f},{v}" for i, v in enumerate(values))
    path.write_text("t,carbon\n" + rows + "\n")
    return str(path)


def spec(deferrable: bool = True, priority: int = 0, **energy: object) -> dict:
    return {"name": "reduce", "priority": priority, "cpus_min": 1.0, "time_s": 1800.0,
            "energy": {"deferrable": deferrable, "max_delay": None, "carbon_threshold": None,
                       "price_threshold": None, **energy}}


def hold(policy: EnergyPolicy, s: dict, now: float, deadline: float | None, **kw: object):
    return policy.hold("reduce", s, now=now, submitted_at=now, deadline=deadline,
                       expected_s=1800.0, expected_j=1.8e6, **kw)


@pytest.fixture
def policy(tmp_path: Path) -> EnergyPolicy:
    return EnergyPolicy.from_config({"provider": "replay", "file": replay(tmp_path)})


def test_deferrable_task_waits_for_the_dip_then_starts(policy):
    assert hold(policy, spec(), T0, T0 + 10 * H, execution="e1") == T0 + 5 * H
    assert hold(policy, spec(), T0 + 5 * H, T0 + 10 * H, execution="e1") is None


def test_deferral_never_past_deadline_or_allocation_end(tmp_path, policy):
    until = hold(policy, spec(), T0, T0 + 4 * H, execution="e2")
    assert until == T0 + 3 * H  # the cleanest start that still ends by the deadline
    bounded = EnergyPolicy.from_config({"provider": "replay", "file": replay(tmp_path)},
                                       alloc_end=T0 + 2 * H)
    until = hold(bounded, spec(), T0, T0 + 10 * H, execution="e3")
    assert until is not None and until + 1800.0 <= T0 + 2 * H
    assert until == T0 + 1 * H
    # past its latest start a task is never held, whatever the signal
    assert hold(bounded, spec(), T0 + 1.6 * H, T0 + 10 * H, execution="e4") is None


def test_max_delay_bounds_deferral(policy):
    until = hold(policy, spec(max_delay=2 * H), T0, None, execution="e5")
    assert until is not None and until <= T0 + 2 * H


def test_thresholds_per_priority_and_per_task(policy):
    now = T0 + 10 * H + 60  # 500 g: the dirtiest slot of the coming day (very high)
    assert policy.level(now).name == "VERY_HIGH"
    plain = spec(deferrable=False)
    assert hold(policy, plain, now, None) == T0 + 11 * H  # priority 0: re-check next slot
    assert hold(policy, spec(deferrable=False, priority=5), now, None) == T0 + 11 * H
    assert hold(policy, spec(deferrable=False, priority=10), now, None) is None
    assert hold(policy, spec(deferrable=False, carbon_threshold=600.0), now, None) is None
    assert hold(policy, spec(deferrable=False, carbon_threshold=450.0), now, None) is not None
    assert hold(policy, spec(deferrable=False, carbon_threshold="high"), now, None) is not None
    # a threshold never holds a task past its latest start
    assert hold(policy, plain, now, now + 1800.0 + 600.0) == now + 600.0
    # once the simulation has ended nothing waits (the allocation is powered anyway)
    assert hold(policy, plain, now, None, sim_running=False) is None


def test_concurrency_scales_with_level(tmp_path, policy):
    assert policy.concurrency(8, now=T0 + 5 * H) == 8  # in the dip: very low, every core
    assert policy.concurrency(8, now=T0 + 10 * H) == 2  # very high: a quarter
    assert policy.concurrency(8, now=T0 + 10 * H, sim_running=False) == 8  # the drain
    flat = EnergyPolicy.from_config({"carbon": 300})
    assert flat.concurrency(8, now=T0) == 8  # no signal to follow: unchanged
    custom = EnergyPolicy.from_config({"provider": "replay", "file": replay(tmp_path),
                                       "concurrency": {"very_high": 0.5, "very_low": 0.75}})
    assert custom.concurrency(8, now=T0 + 10 * H) == 4
    assert custom.concurrency(8, now=T0 + 5 * H) == 6
    assert custom.concurrency(8, now=T0 + 7 * H) == 4  # high: the default half kept


def cap_tasks(paused: set[str] = frozenset()) -> list[CapTask]:
    return [CapTask("low-old", 0, True, T0 - 600, "low-old" in paused),
            CapTask("low-young", 0, True, T0 - 5, "low-young" in paused),
            CapTask("high", 9, True, T0 - 600, "high" in paused)]


def test_power_cap_lowest_priority_first_hysteresis_and_min_runtime():
    p = EnergyPolicy.from_config({"power_cap_w": 100, "resume_w": 80, "min_runtime_s": 30,
                                  "cap_settle_s": 5})
    assert p.power_cap("n1", 120.0, cap_tasks(), now=T0) == (("low-old",), ())
    assert p.power_cap("n1", 120.0, cap_tasks(), now=T0 + 1) == ((), ())  # settling
    # still over the cap: the young one is protected by min_runtime, so the high one goes
    assert p.power_cap("n1", 120.0, cap_tasks({"low-old"}), now=T0 + 6) == (("high",), ())
    both = {"low-old", "high"}
    assert p.power_cap("n1", 90.0, cap_tasks(both), now=T0 + 20) == ((), ())  # in the band
    assert p.power_cap("n1", 70.0, cap_tasks(both), now=T0 + 30) == ((), ("high",))
    assert p.power_cap("n1", 70.0, cap_tasks({"low-old"}), now=T0 + 40) == ((), ("low-old",))
    assert p.power_cap("n1", None, cap_tasks(), now=T0 + 50) == ((), ())


def test_power_cap_never_resumes_what_it_did_not_pause():
    p = EnergyPolicy.from_config({"power_cap_w": {"n1": 100}, "cap_settle_s": 0})
    running = [{"id": "sim-preempted", "priority": 9, "started_at": T0 - 600, "paused": True}]
    assert p.power_cap("n1", 10.0, running, now=T0) == ((), ())
    assert p.power_cap("n2", 500.0, cap_tasks(), now=T0) == ((), ())  # no cap on n2
    assert EnergyPolicy.from_config({}).power_cap("n1", 1e6, cap_tasks(), now=T0) == ((), ())


def test_footprint_with_static_signal():
    p = EnergyPolicy.from_config({"carbon": 200})
    out = p.footprint(3.6e6, T0, T0 + 600)
    assert out == {"energy_j": 3.6e6, "gco2": pytest.approx(200.0), "signal_source": "static",
                   "intensity_g_per_kwh": 200.0}


def test_footprint_follows_a_varying_signal(policy):
    out = policy.footprint(3.6e6, T0 + 4.5 * H, T0 + 5.5 * H)  # half at 340, half at 100
    assert out["intensity_g_per_kwh"] == pytest.approx(220.0)
    assert out["gco2"] == pytest.approx(220.0)
    assert out["signal_source"].startswith("replay:")


def test_status_shape(policy):
    st = policy.status(T0 + 5 * H)
    assert st["carbon_g_per_kwh"] == 100.0 and st["level"] == "very_low"
    assert st["degraded"] is False and st["reason"] is None and st["flat"] is False
    for key in ("provider", "source", "serving", "price_per_mwh", "forecast_age_s",
                "forecast_end", "alloc_end", "capped"):
        assert key in st


def test_unreachable_provider_degrades_to_static(monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: connections are refused
    p = EnergyPolicy.from_config({"provider": "ukci", "base_url": f"http://127.0.0.1:{port}",
                                  "timeout_s": 2})
    assert p.provider.refresh() is False
    st = p.status(T0)
    assert st["degraded"] is True and "no response" in st["reason"]
    assert st["serving"] == "fallback" and st["flat"] is True
    assert hold(p, spec(deferrable=False), T0, None) is None
    assert p.concurrency(4, now=T0) == 4


@pytest.mark.parametrize(("section", "needle"), [
    ({"provder": "static"}, "'provder' is unknown; allowed: provider,"),
    ({"provider": "carbonbrief"}, "allowed: electricitymaps, entsoe, replay, static, ukci"),
    ({"provider": "electricitymaps"}, "needs key 'zone'"),
    ({"provider": "electricitymaps", "zone": "DE", "token_env": "ODOP_TEST_NO_SUCH_VAR"},
     "'ODOP_TEST_NO_SUCH_VAR'"),
    ({"power_cap_w": 100, "resume_w": 120}, "resume_w = 120.0 W"),
    ({"priority_thresholds": {"0": "greenish"}}, "priority_thresholds.0"),
    ({"priority_thresholds": {"urgent": "low"}}, "priority 'urgent' must be an integer"),
    ({"concurrency": {"high": -1}}, "concurrency.high"),
    ({"concurrency": {"low": 1.5}}, "concurrency.low = 1.5 must be a share between 0 and 1"),
    ({"level_quantiles": [0.5, 0.2, 0.6, 0.8]}, "4 ascending numbers"),
    ({"horizon_s": "two days"}, "horizon_s"),
])
def test_from_config_errors_name_the_key(section, needle):
    with pytest.raises(EnergyConfigError) as info:
        EnergyPolicy.from_config(section)
    assert needle in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_tokens_come_from_the_environment():
    env = {"MY_EM_TOKEN": "secret"}
    p = EnergyPolicy.from_config({"provider": "electricitymaps", "zone": "DE",
                                  "token_env": "MY_EM_TOKEN"}, env=env)
    assert p.provider.token == "secret"  # type: ignore[attr-defined]
    assert EnergyPolicy.from_config({"horizon_s": "12h"}).settings.horizon_s == 12 * H
