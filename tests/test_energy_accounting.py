"""Accounting arithmetic, counterfactuals and the Slurm export text."""

from __future__ import annotations

import numpy as np
import pytest

from odop.energy.accounting import account_execution, cpu_share_energy, run_totals
from odop.energy.compare import after_simulation, immediate
from odop.energy.export import ExportTask, Site, render_slurm_script
from odop.energy.forecast import Forecast
from odop.energy.signals import StaticSignal

SIG = Forecast(np.array([0.0, 3600.0]), 3600.0, np.array([100.0, 300.0]), source="test")


def test_cpu_share_split():
    j = cpu_share_energy(np.array([0, 10, 20.0]), np.array([100, 100, 200.0]),
                         np.array([0, 5, 5.0]), np.array([0, 10, 20.0]))
    assert list(j) == [500.0, 0.0]  # half the CPU of 1000 J, then none of 1500 J


def test_execution_grams_and_labels():
    t = np.array([3000.0, 3600.0, 4200.0])
    acc = account_execution("e1", t, np.zeros(3), SIG, "rapl", task_watts=np.full(3, 3000.0),
                            submitted_at=0.0)
    assert acc.joules == 3.6e6 and acc.kwh == 1.0
    assert acc.gco2 == pytest.approx(0.5 * 100 + 0.5 * 300)
    assert acc.power_source == "rapl" and acc.signal_source == "test"
    tot = run_totals([acc, acc])
    assert tot.gco2 == pytest.approx(400) and tot.power_sources == ("rapl",)
    imm = immediate([acc], SIG)
    assert imm.gco2 == pytest.approx(100) and imm.saving_gco2 == pytest.approx(-100)
    with pytest.raises(ValueError, match="e2"):
        account_execution("e2", t, np.zeros(3), SIG, "model")


def test_after_simulation_node_hours():
    cmp = after_simulation([3600.0, 3600.0], [32, 32], cores_per_node=64, nodes=1,
                           node_watts=500.0, sim_end=3600.0, signal=SIG, actual_gco2=10.0)
    assert cmp.joules == 3600 * 500.0 and cmp.gco2 == pytest.approx(0.5 * 300)
    assert cmp.power_source.startswith("model:")


def test_export_script_picks_cleanest_site_and_window():
    dirty = StaticSignal(400.0, name="dirty")
    clean = Forecast(np.arange(4) * 3600.0 + 1.7e9, 3600.0, np.array([300, 50, 300, 300.0]),
                     source="clean")

    class Replay(StaticSignal):
        def forecast(self, now, horizon_s):
            return clean

    tasks = [ExportTask("render", ["render", "--in", "a b"], 1800, 1e6, 1.7e9 + 4 * 3600),
             ExportTask("pack", ["tar", "czf", "x.tgz", "out"], 1800, 1e6, 1.7e9 + 4 * 3600)]
    plan = render_slurm_script(tasks, [Site("a", dirty), Site("b", Replay(), ["--clusters=b"])],
                               1.7e9, tz=None, job_name="leftover")
    assert plan.site == "b" and plan.decision.start == 1.7e9 + 3600
    text = plan.script
    assert text.startswith("#!/bin/bash\n#SBATCH --job-name=leftover\n#SBATCH --begin=")
    assert "--clusters=b" in text and "#SBATCH --time=01:12:00" in text
    assert "srun --ntasks=1 --cpus-per-task=1 render --in 'a b'" in text
    assert "2023-11-14T23:13:20Z (UTC)" in text
