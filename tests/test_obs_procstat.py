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
