from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from odop_obs.errors import ObsConfigError
from odop_obs.fakes import FakeZone, server_zones, set_energy, write_powercap
from odop_obs.power import NvmlPower, PowerSource, RaplSource, UtilisationModel
from odop_obs.samplers.power import PowerSampler


def _system(util: list[float]) -> dict[str, Any]:
    mean = sum(util) / len(util)
    return {"cpu": {"ids": list(range(len(util))), "util": util, "mean": mean}}


def _gpu(*devices: dict[str, Any]) -> dict[str, Any]:
    return {"available": bool(devices), "devices": list(devices)}


def _advance(root: Path, zones: list[FakeZone], joules: dict[str, float]) -> None:
    for zone in zones:
        zone.energy_uj = int((zone.energy_uj + joules.get(zone.name, 0.0) * 1e6) % zone.max_uj)
        set_energy(root, zone)


def test_rapl_sums_packages_and_dram_and_skips_duplicates(tmp_path: Path) -> None:
    zones = server_zones()
    write_powercap(tmp_path, zones)
    rapl = RaplSource(str(tmp_path))
    assert sorted(z.domain for z in rapl.counters) == ["cpu", "cpu", "dram", "dram"]
    _advance(tmp_path, zones, {"package-0": 100.0, "package-1": 60.0, "dram": 10.0, "core": 50})
    watts = rapl.read(2.0, {})
    # mmio package-0 is a duplicate counter and "core" is inside the package
    assert watts == pytest.approx({"cpu": 80.0, "dram": 10.0})
    rapl.close()


def test_rapl_counter_wraparound(tmp_path: Path) -> None:
    zone = FakeZone("intel-rapl:0", "package-0", energy_uj=990_000, max_uj=1_000_000)
    write_powercap(tmp_path, [zone])
    rapl = RaplSource(str(tmp_path))
    _advance(tmp_path, [zone], {"package-0": 0.5})  # wraps to 490_000
    assert zone.energy_uj == 490_000
    assert rapl.read(1.0, {}) == pytest.approx({"cpu": 0.5})


def test_rapl_unreadable_or_missing_is_unavailable(tmp_path: Path) -> None:
    assert RaplSource(str(tmp_path / "nothing")).read(1.0, {}) == {}
    zone = FakeZone("intel-rapl:0", "package-0")
    write_powercap(tmp_path, [zone])
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()  # as if root-only and unreadable
    rapl = RaplSource(str(tmp_path))
    assert rapl.counters == [] and "no readable" in rapl.reason


def test_model_is_linear_in_utilisation() -> None:
    model = UtilisationModel(max_w_per_core=4.0, idle_fraction=0.25)
    assert model.watts(8, 0.0) == pytest.approx(8.0)
    assert model.watts(8, 1.0) == pytest.approx(32.0)
    assert model.read(1.0, {"system": _system([1.0, 0.0])}) == pytest.approx({"cpu": 5.0})
    assert model.read(1.0, {}) == {}
    with pytest.raises(ObsConfigError, match="idle_fraction"):
        UtilisationModel(idle_fraction=2)


def test_nvml_power_prefers_energy_counter() -> None:
    src = NvmlPower()
    first = {"index": 0, "uuid": "a", "energy_j": 100.0, "power_w": 999.0}
    old = {"index": 1, "uuid": "b", "energy_j": None, "power_w": 50.0}
    assert src.read(1.0, {"gpu": _gpu(first, old)}) == pytest.approx({"gpu": 1049.0})
    later = {**first, "energy_j": 400.0}
    assert src.read(2.0, {"gpu": _gpu(later, old)}) == pytest.approx({"gpu": 200.0})
    assert src.read(1.0, {"gpu": _gpu()}) == {}


SOURCES: list[tuple[str, Callable[[Path], PowerSource], dict[str, Any]]] = [
    ("rapl", lambda p: RaplSource(str(write_powercap(p, server_zones()))), {}),
    ("nvml", lambda p: NvmlPower(), {"gpu": _gpu({"index": 0, "power_w": 5.0})}),
    ("model", lambda p: UtilisationModel(), {"system": _system([0.5])}),
]


@pytest.mark.parametrize("name, make, sections", SOURCES, ids=[s[0] for s in SOURCES])
def test_every_source_keeps_the_contract(
    tmp_path: Path, name: str, make: Callable[[Path], PowerSource], sections: dict[str, Any]
) -> None:
    source = make(tmp_path)
    assert source.name == name
    for dt in (1.0, 0.5):
        watts = source.read(dt, sections)
        assert set(watts) <= {"cpu", "dram", "gpu"}
        assert all(w >= 0.0 for w in watts.values())
    assert source.read(1.0, {}) == {} or name == "rapl"
    source.close()


def test_sampler_prefers_measurement_and_accumulates_energy(tmp_path: Path) -> None:
    zones = server_zones()
    write_powercap(tmp_path, zones)
    sampler = PowerSampler([RaplSource(str(tmp_path)), NvmlPower(), UtilisationModel()])
    sections = {"system": _system([1.0, 1.0]), "gpu": _gpu({"index": 0, "power_w": 30.0})}
    for _ in range(3):
        _advance(tmp_path, zones, {"package-0": 20.0, "dram": 2.0})
        section = sampler.sample(0.0, 2.0, sections)
    assert section["sources"] == {"cpu": "rapl", "dram": "rapl", "gpu": "nvml"}
    assert section["watts"] == pytest.approx({"cpu": 10.0, "dram": 2.0, "gpu": 30.0, "total": 42})
    assert section["energy_j"]["total"] == pytest.approx(3 * 2.0 * 42.0)
    sampler.close()


def test_sampler_falls_back_to_the_model(tmp_path: Path) -> None:
    sampler = PowerSampler([RaplSource(str(tmp_path)), NvmlPower(), UtilisationModel()])
    section = sampler.sample(0.0, 1.0, {"system": _system([0.0, 0.0]), "gpu": _gpu()})
    assert section["sources"] == {"cpu": "model"}
    assert section["watts"]["cpu"] == pytest.approx(2 * 4.0 * 0.3)
    assert section["watts"]["gpu"] == 0.0


def test_unreadable_zone_is_a_problem_reported_once(tmp_path: Path) -> None:
    zones = [FakeZone("intel-rapl:0", "package-0"), FakeZone("intel-rapl:1", "package-1")]
    write_powercap(tmp_path, zones)
    counter = tmp_path / "intel-rapl:1" / "energy_uj"
    counter.unlink()
    counter.mkdir()  # reading a directory fails like a root-only file does for a user
    sampler = PowerSampler([RaplSource(str(tmp_path)), UtilisationModel()])
    sections = {"system": _system([0.5, 0.5])}
    _advance(tmp_path, zones[:1], {"package-0": 5.0})
    first = sampler.sample(0.0, 1.0, sections)
    (problem,) = first["problems"]
    assert "intel-rapl:1" in problem and "unreadable" in problem
    assert first["source"] == "rapl" and first["watts"]["cpu"] == pytest.approx(5.0)
    assert first["zones"] == {"intel-rapl:0:package-0": pytest.approx(5.0)}
    assert sampler.sample(0.0, 1.0, sections)["problems"] == []
    sampler.close()


def test_source_names_every_source_used(tmp_path: Path) -> None:
    zones = server_zones()
    write_powercap(tmp_path, zones)
    sampler = PowerSampler([RaplSource(str(tmp_path)), NvmlPower(), UtilisationModel()])
    gpu = _gpu({"index": 0, "power_w": 30.0})
    section = sampler.sample(0.0, 1.0, {"system": _system([0.1]), "gpu": gpu})
    assert section["source"] == "rapl+nvml"
    sampler.close()
