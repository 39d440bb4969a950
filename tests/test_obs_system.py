from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from odop_obs.samplers.cpustat import CpuTimes, busy_fractions
from odop_obs.samplers.system import SystemSampler

STAT = """cpu  {agg}
cpu0 {c0}
cpu2 {c2}
intr 12 3 4
ctxt 99
"""


def _write(path: Path, c0: str, c2: str) -> None:
    path.write_text(STAT.format(agg="1 2 3 4 5 6 7 8 9 10", c0=c0, c2=c2))


def test_proc_stat_parse_and_fractions(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    _write(stat, "100 0 0 900 0 0 0 0 0 0", "0 0 0 1000 0 0 0 0 0 0")
    times = CpuTimes(str(stat))
    ids, first = times.read()
    assert ids == [0, 2] and first.shape == (2, 8)
    # core 0: 75 busy of 100 ticks; core 2: 50 iowait, 50 idle -> not busy
    _write(stat, "150 0 25 925 0 0 0 0 0 0", "0 0 0 1050 50 0 0 0 0 0")
    _, second = times.read()
    util, iowait = busy_fractions(first, second)
    assert util.tolist() == pytest.approx([0.75, 0.0])
    assert iowait == pytest.approx(50 / 200)
    times.close()


def test_no_elapsed_ticks_is_idle() -> None:
    same = np.ones((3, 8), dtype=np.int64)
    util, iowait = busy_fractions(same, same)
    assert util.tolist() == [0.0, 0.0, 0.0] and iowait == 0.0


def test_psutil_fallback_when_proc_stat_is_absent(tmp_path: Path) -> None:
    ids, times = CpuTimes(str(tmp_path / "missing")).read()
    assert len(ids) == times.shape[0] >= 1 and times.shape[1] == 8


def test_system_section_on_this_machine() -> None:
    sampler = SystemSampler()
    section = sampler.sample(0.0, 0.5, {})
    cpu = section["cpu"]
    assert len(cpu["ids"]) == len(cpu["util"]) >= 1
    assert all(0.0 <= u <= 1.0 for u in cpu["util"])
    assert cpu["busy_cores"] == pytest.approx(sum(cpu["util"]), abs=1e-3)
    assert 0 < section["mem"]["available"] <= section["mem"]["total"]
    assert set(section["io"]) == {"disk_read", "disk_write", "net_recv", "net_sent"}
    assert len(section["load"]) == 3
    sampler.close()
