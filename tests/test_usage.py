from __future__ import annotations

from odop.engine.usage import UsageMeter


def sample(watts: float, util: list[float], pid_threads: dict[int, int]) -> dict:
    return {"power": {"watts": {"total": watts}, "source": "model"},
            "system": {"cpu": {"util": util}},
            "processes": {"watched": [{"pid": p, "threads": n} for p, n in pid_threads.items()]}}


def test_energy_is_cpu_time_times_power_per_busy_core() -> None:
    meter = UsageMeter()
    meter.start(7)
    meter.add(sample(100.0, [1.0, 1.0], {7: 3}))  # 50 W per busy core
    meter.add(sample(60.0, [1.0, 0.5], {7: 5}))   # 40 W per busy core
    usage = meter.stop(7)
    assert usage.energy_j(2.0, meter.w_per_core) == 2.0 * 45.0
    assert usage.threads == 5 and meter.source == "model"


def test_short_task_uses_latest_sample_and_no_power_means_no_figure() -> None:
    meter = UsageMeter()
    meter.start(1)
    assert meter.stop(1).energy_j(1.0, meter.w_per_core) is None
    meter.add(sample(30.0, [0.2, 0.1], {}))       # idle node: 30 W per core at most
    meter.start(2)
    assert meter.stop(2).energy_j(0.5, meter.w_per_core) == 15.0

