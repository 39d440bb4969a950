from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from odop_obs.samplers import procstat
from odop_obs.samplers.procstat import ProcStatFile


@pytest.fixture(params=["proc", "psutil"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "psutil":
        monkeypatch.setattr(procstat, "HAVE_PROC", False)
    return str(request.param)


def _wait_state(stat: ProcStatFile, state: str) -> None:
    deadline = time.monotonic() + 10
    while (st := stat.read()) is None or st.state != state:
        assert time.monotonic() < deadline, f"state never became {state}"
        time.sleep(0.01)


def test_reads_this_process(backend: str) -> None:
    stat = ProcStatFile(os.getpid())
    st = stat.read()
    assert st is not None and not st.exited
    me = psutil.Process()
    assert st.threads == me.num_threads()
    assert st.rss == pytest.approx(me.memory_info().rss, rel=0.2)
    assert st.cpu_s == pytest.approx(sum(me.cpu_times()[:2]), abs=0.1)
    assert st.core in stat.affinity()
    stat.close()


def test_stopped_zombie_and_reaped(backend: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    stat = ProcStatFile(child.pid)
    os.kill(child.pid, signal.SIGSTOP)
    _wait_state(stat, "T")  # the engine's pause is visible
    os.kill(child.pid, signal.SIGKILL)
    _wait_state(stat, "Z")  # dead, not yet reaped
    child.wait()
    assert stat.read() is None
    stat.close()


def test_missing_pid(backend: str) -> None:
    with pytest.raises(psutil.NoSuchProcess):
        ProcStatFile(99999999)


def test_parse_stat_with_a_hostile_name() -> None:
    from odop_obs.samplers.procstat import parse_stat

    rest = "S 7 1 1 0 -1 0 0 0 0 0 250 50 30 20 20 0 3 0 1 0 10" + " 0" * 14 + " 5 0 0"
    st = parse_stat(f"42 (a) (b c) {rest}\n".encode())
    assert st.name == "a) (b c" and st.ppid == 7 and st.state == "S"
    hz = os.sysconf("SC_CLK_TCK")
    assert st.user_s == 250 / hz and st.system_s == 50 / hz and st.threads == 3
    assert st.reaped_user_s == 30 / hz and st.core == 5


def test_parse_extra_and_unreadable() -> None:
    from odop_obs.samplers.procstat import parse_extra

    status = b"Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n"
    io = (b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\n"
          b"cancelled_write_bytes: 0\n")
    extra = parse_extra(status, io)
    assert (extra.ctx_vol, extra.ctx_invol, extra.read_bytes, extra.write_bytes) == \
        (12, 3, 4096, 8192)
    assert parse_extra(b"", b"").read_bytes is None  # /proc/<pid>/io not readable


def test_extra_counters_of_a_child(backend: str, tmp_path: object) -> None:
    code = "import os, time\nfor _ in range(20): time.sleep(0.001)\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code])
    stat = ProcStatFile(child.pid)
    try:
        deadline = time.monotonic() + 10
        while (extra := stat.extra()).ctx_vol is None or extra.ctx_vol < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert extra.ctx_invol is not None and extra.read_bytes is not None
        assert extra.write_bytes is not None
        st = stat.read()
        assert st is not None and st.ppid == os.getpid() and st.name.startswith("python")
    finally:
        child.kill()
        child.wait()
        stat.close()
