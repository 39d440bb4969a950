from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from odop_obs.samplers.cpustat import CpuTimes, core_shares
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
    util, iowait, split = core_shares(first, second)
    assert util.tolist() == pytest.approx([0.75, 0.0])
    assert iowait == pytest.approx(50 / 200)
    assert split == {"per_core": [75.0, 0.0], "user": [50.0, 0.0], "system": [25.0, 0.0],
                     "iowait": [0.0, 50.0], "steal": [0.0, 0.0]}
    times.close()


def test_no_elapsed_ticks_is_idle() -> None:
    same = np.ones((3, 8), dtype=np.int64)
    util, iowait, _ = core_shares(same, same)
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


MEMINFO = b"MemTotal:       16000 kB\nMemFree:         2000 kB\nMemAvailable:    6000 kB\n"
DISKSTATS = b"""   7       0 loop0 5 0 80 0 1 0 8 0 0 0 0 0 0 0 0 0 0
 253       0 vda 10 0 100 5 20 0 200 9 0 1 1 0 0 0 0 0 0
 253       1 vda1 9 0 90 5 19 0 190 9 0 1 1 0 0 0 0 0 0
"""
NETDEV = b"""Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets
    lo:  999 9 0 0 0 0 0 0  999 9 0 0 0 0 0 0
  eth0: 1000 5 0 0 0 0 0 0  300 3 0 0 0 0 0 0
  eth1:   24 1 0 0 0 0 0 0   76 1 0 0 0 0 0 0
"""


def test_proc_parsers() -> None:
    from odop_obs.samplers import procfs

    parse_meminfo, parse_loadavg = procfs.parse_meminfo, procfs.parse_loadavg
    parse_diskstats, parse_netdev = procfs.parse_diskstats, procfs.parse_netdev

    mem = parse_meminfo(MEMINFO)
    assert mem == {"total": 16000 * 1024, "available": 6000 * 1024, "used": 10000 * 1024}
    assert parse_loadavg(b"0.50 1.25 2.00 1/100 42\n") == [0.5, 1.25, 2.0]
    assert parse_diskstats(DISKSTATS, {"vda"}) == (100 * 512, 200 * 512)  # no partition
    assert parse_netdev(NETDEV) == (1024, 376)  # loopback left out


def test_fake_proc_tree_rates(tmp_path: Path) -> None:
    from odop_obs.samplers.cgroup import CgroupLimits
    from odop_obs.samplers.procfs import NodeCounters

    (tmp_path / "net").mkdir()
    (tmp_path / "meminfo").write_bytes(MEMINFO)
    (tmp_path / "loadavg").write_bytes(b"1 2 3 1/1 1\n")
    (tmp_path / "diskstats").write_bytes(DISKSTATS)
    (tmp_path / "net" / "dev").write_bytes(NETDEV)
    block = tmp_path / "block"
    (block / "vda" / "device").mkdir(parents=True)
    (block / "loop0").mkdir()
    stat = tmp_path / "stat"
    _write(stat, "100 0 0 900 0 0 0 0 0 0", "0 0 0 1000 0 0 0 0 0 0")
    no_cgroup = CgroupLimits(tmp_path / "no-cgroup")  # the fake machine is the node
    sampler = SystemSampler(CpuTimes(str(stat)), NodeCounters(str(tmp_path), str(block)),
                            no_cgroup)
    _write(stat, "140 10 20 900 10 5 5 10 0 0", "0 0 0 1000 100 0 0 0 0 0")
    grown = DISKSTATS.replace(b" 100 5 20 0 200", b" 300 5 20 0 600")
    (tmp_path / "diskstats").write_bytes(grown)
    section = sampler.sample(0.0, 2.0, {})
    flat = sampler.top_level(section)
    assert flat["cpu"]["per_core"] == [90.0, 0.0] and flat["cpu"]["user"] == [50.0, 0.0]
    assert flat["cpu"]["system"] == [30.0, 0.0] and flat["cpu"]["iowait"] == [10.0, 100.0]
    assert flat["cpu"]["steal"] == [10.0, 0.0]
    assert flat["disk"] == {"read_bps": 200 * 512 / 2, "write_bps": 400 * 512 / 2}
    assert flat["net"] == {"rx_bps": 0.0, "tx_bps": 0.0} and flat["load"] == [1.0, 2.0, 3.0]
    assert flat["memory"]["used"] == 10000 * 1024
    sampler.close()


def test_cgroup_limits_give_the_cpuset_cores_and_memory_limit(tmp_path: Path) -> None:
    from odop_obs.samplers.cgroup import CgroupLimits

    (tmp_path / "cgroup").write_text("4:memory:/job\n3:cpuset:/job\n")
    for ctrl, files in {"cpuset": {"cpuset.effective_cpus": "1,3-4\n"},
                        "memory": {"memory.limit_in_bytes": f"{4 << 30}\n",
                                   "memory.usage_in_bytes": f"{3 << 30}\n",
                                   "memory.stat": f"total_inactive_file {1 << 30}\n"}}.items():
        folder = tmp_path / ctrl / "job"
        folder.mkdir(parents=True)
        for name, text in files.items():
            (folder / name).write_text(text)
    limits = CgroupLimits(tmp_path / "cgroup", tmp_path)
    assert limits.cores == [1, 3, 4] and limits.limit() == 4 << 30
    machine = {"total": 24 << 30, "available": 20 << 30, "used": 4 << 30}
    assert limits.memory(machine) == {"total": 4 << 30, "available": 2 << 30, "used": 2 << 30}
    (tmp_path / "memory" / "job" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    assert limits.memory(machine) == machine  # v1's "no limit"
