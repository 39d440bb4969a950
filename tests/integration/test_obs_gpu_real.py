"""The GPU sampler against the real NVML: runs on a GPU node, skipped elsewhere."""

from __future__ import annotations

import pytest

from odop_obs import GpuSampler, Observer

pytestmark = pytest.mark.gpu


@pytest.fixture
def sampler() -> GpuSampler:
    s = GpuSampler()
    if not s.available:
        pytest.skip(f"no GPU here: {s.sample(0.0, 1.0, {})['reason']}")
    return s


def test_real_devices_have_units(sampler: GpuSampler) -> None:
    section = sampler.sample(0.0, 1.0, {})
    assert section["available"] and section["devices"]
    for dev in section["devices"]:
        assert dev["uuid"].startswith("GPU-") and dev["mem_total"] > 0
        assert 0.0 <= dev["util"] <= 1.0 and 0 <= dev["mem_used"] <= dev["mem_total"]
        assert dev["power_w"] is None or 0.0 < dev["power_w"] < 2000.0
    sampler.close()


def test_observer_measures_gpu_power(sampler: GpuSampler) -> None:
    sampler.close()
    obs = Observer.standard(interval_s=0.2)
    obs.run(count=2)
    sample = obs.tick()
    assert sample["power"]["sources"]["gpu"] == "nvml"
    assert sample["power"]["watts"]["gpu"] > 0.0
    obs.close()
