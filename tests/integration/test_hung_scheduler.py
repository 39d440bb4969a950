"""A scheduler that is stopped (SIGSTOP), not killed, is alive to its pid but answers
nothing: odop.stop() must still return, within ``scheduler_silence_s`` plus the restart,
with every submission done by the scheduler started in its place or counted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec
from tests.integration.helpers import field_checksum, odop_process

pytestmark = [pytest.mark.slow, pytest.mark.mpi, pytest.mark.timeout(180),
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]

SIM = '''
import json, os, sys, time
import numpy as np
import odop
from mpi4py import MPI

@odop.task(name="touch", time="5s", cpus=1)
def touch(path):
    open(path, "w").close()

if __name__ == "__main__":
    comm = MPI.COMM_WORLD
    out = sys.argv[1]
    odop.start(config={"scheduler_silence_s": 4.0, "sample_interval_s": 0.5})
    if comm.rank == 0:
        open(os.path.join(out, "started"), "w").close()
    field = np.arange(100.0) + comm.rank
    for step in range(30):
        field = np.sqrt(field * field + 1.0)
        odop.submit("touch", path=os.path.join(out, f"r{comm.rank}-{step}"))
        time.sleep(0.1)
    total = comm.allreduce(float(field.sum()))
    t0 = time.monotonic()
    summary = odop.stop()
    if comm.rank == 0:
        print(json.dumps({"checksum": total, "summary": summary,
                          "stop_s": time.monotonic() - t0}), flush=True)
'''



def test_stop_returns_past_a_stopped_scheduler(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "sim.py").write_text(SIM)
    out = tmp_path / "out"
    out.mkdir()
    argv = [str(mpiexec()), "-n", "2", sys.executable, str(tmp_path / "sim.py"), str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, env=child_env(ODOP_HOME=str(odop_home)))
    end = time.monotonic() + 60
    while not (out / "started").exists() and time.monotonic() < end:
        time.sleep(0.05)
    stopped = odop_process(odop_home, "scheduler")
    assert stopped is not None
    stopped.send_signal(signal.SIGSTOP)
    try:
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if stopped.is_running():
            os.kill(stopped.pid, signal.SIGCONT)
    assert proc.returncode == 0, stderr
    result = json.loads(stdout.splitlines()[-1])
    assert result["checksum"] == field_checksum(30)
    assert "has not answered for" in stderr and "killing it" in stderr, stderr
    assert result["stop_s"] < 60, result
    account = result["summary"]["account"]
    assert result["summary"]["drained"] and account["unaccounted"] == 0, account
    assert account["done"] + account["journalled"] == 60, account  # done, or said kept
    assert len([p for p in out.iterdir() if p.name != "started"]) == account["done"]
