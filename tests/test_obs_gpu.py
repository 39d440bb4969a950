from __future__ import annotations

import pytest

from odop_obs.fakes import FakeGpu, FakeNvml
from odop_obs.samplers.gpu import GpuSampler


def _two_gpus() -> FakeNvml:
    return FakeNvml([
        FakeGpu(uuid="GPU-a", util=80, mem_util=40, mem_used=2**30, power_w=350.0,
                energy_mj=5_000, procs=[(1234, 2**30)]),
        FakeGpu(uuid="GPU-b", energy_mj=None),
    ])


def test_devices_are_read_with_units() -> None:
    section = GpuSampler(_two_gpus()).sample(0.0, 1.0, {})
    assert section["available"] is True and section["reason"] == ""
    a, b = section["devices"]
    assert (a["index"], a["uuid"], b["uuid"]) == (0, "GPU-a", "GPU-b")
    assert a["util"] == pytest.approx(0.8) and a["mem_util"] == pytest.approx(0.4)
    assert a["mem_used"] == 2**30 and a["mem_total"] == 80 * 2**30
    assert a["power_w"] == pytest.approx(350.0) and a["power_limit_w"] == pytest.approx(700.0)
    assert a["energy_j"] == pytest.approx(5.0)
    assert a["procs"] == [{"pid": 1234, "mem": 2**30}]


def test_unsupported_query_is_none_not_an_error() -> None:
    section = GpuSampler(_two_gpus()).sample(0.0, 1.0, {})
    assert section["devices"][1]["energy_j"] is None
    assert section["devices"][1]["power_w"] == pytest.approx(70.0)


@pytest.mark.parametrize(
    "nvml, reason",
    [
        (FakeNvml(init_error="Driver Not Loaded"), "Driver Not Loaded"),
        (FakeNvml([]), "no GPU"),
    ],
)
def test_absent_gpu_is_a_normal_state(nvml: FakeNvml, reason: str) -> None:
    sampler = GpuSampler(nvml)
    section = sampler.sample(0.0, 1.0, {})
    assert section["available"] is False and reason in section["reason"]
    assert section["devices"] == [] and not sampler.available


def test_real_pynvml_without_a_driver_reports_absence() -> None:
    sampler = GpuSampler()  # this machine has no GPU driver (on a GPU node: available)
    section = sampler.sample(0.0, 1.0, {})
    assert section["available"] is sampler.available
    assert section["available"] or section["reason"]
    sampler.close()


def test_close_shuts_nvml_down() -> None:
    nvml = _two_gpus()
    sampler = GpuSampler(nvml)
    sampler.close()
    assert not nvml.initialised
    assert sampler.sample(0.0, 1.0, {})["available"] is False
