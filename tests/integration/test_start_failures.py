"""odop.start() failing on one rank never hangs the job: the failure reaches every rank,
odop disables itself everywhere with one warning (or raises everywhere), and the
simulation finishes with its undisturbed result. The run folder is a real file system
mounted for the test: read-only, or full (600 KiB)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec
from tests.integration.helpers import field_checksum

pytestmark = [pytest.mark.slow, pytest.mark.mpi, pytest.mark.timeout(180),
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]

SIM = '''
import json, os, sys
import numpy as np
import odop
from mpi4py import MPI

@odop.task(name="shout", time="10s", cpus=1)
def shout(n):
    print("x" * 100_000 * n, flush=True)

if __name__ == "__main__":
    comm = MPI.COMM_WORLD
    config = json.loads(os.environ.get("CONFIG_" + str(comm.rank), "null"))
    try:
        run = odop.start(config=config, task_folder=os.environ.get("TASKS"))
    except odop.OdopError as exc:
        with open(f"raised-{comm.rank}.txt", "w") as fh:
            fh.write(str(exc))
        sys.exit(0)
    field = np.arange(1000, dtype=float) + comm.rank
    for step in range(int(os.environ.get("STEPS", "20"))):
        field = np.sqrt(field * field + 1.0)
        odop.submit("shout", n=int(os.environ.get("SHOUT", "1")))
    total = comm.allreduce(float(field.sum()))
    summary = odop.stop()
    if comm.rank == 0:
        print(json.dumps({"checksum": total, "summary": summary, "started": run is not None}),
              flush=True)
'''



@contextlib.contextmanager
def mounted(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs at ``folder`` with mount ``options`` (root only), unmounted at the end."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a test file system needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _run(tmp_path: Path, home: Path, **env: str) -> subprocess.CompletedProcess:
    (tmp_path / "sim.py").write_text(SIM)
    argv = [str(mpiexec()), "-n", "2", sys.executable, str(tmp_path / "sim.py")]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env=child_env(ODOP_HOME=str(home), **env))


def _last(proc: subprocess.CompletedProcess) -> dict:
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_read_only_run_folder_disables_odop_on_every_rank(tmp_path: Path) -> None:
    with mounted(tmp_path / "home", "ro,size=1m") as home:
        proc = _run(tmp_path, home)
    assert proc.returncode == 0, proc.stderr
    out = _last(proc)
    assert out["checksum"] == pytest.approx(field_checksum(20, size=1000)) and not out["started"]
    assert proc.stderr.count("odop: disabled on every rank") == 1, proc.stderr
    assert "Read-only file system" in proc.stderr
    summary = out["summary"]
    assert "rank 0" in summary["disabled"] and summary["journalled"] == 40, summary
    assert summary["unwritten"] == 0


def test_raise_on_start_failure_raises_on_every_rank(tmp_path: Path) -> None:
    config = json.dumps({"start_failure": "raise"})
    with mounted(tmp_path / "home", "ro,size=1m") as home:
        proc = _run(tmp_path, home, CONFIG_0=config, CONFIG_1=config)
    assert proc.returncode == 0, proc.stderr
    raised = [(tmp_path / f"raised-{rank}.txt").read_text() for rank in (0, 1)]
    assert all("rank 0: OSError" in r and "Read-only file system" in r for r in raised)


def test_config_error_on_one_rank_reaches_every_rank(tmp_path: Path, odop_home: Path) -> None:
    proc = _run(tmp_path, odop_home, CONFIG_1=json.dumps({"selection": "bogus"}))
    assert proc.returncode == 0, proc.stderr
    out = _last(proc)
    assert out["checksum"] == pytest.approx(field_checksum(20, size=1000)) and not out["started"]
    assert "rank 1: ConfigError" in out["summary"]["disabled"]
    assert not (odop_home / "runs").exists()  # it failed before any run was made


def test_a_bad_task_folder_marks_the_run_it_opened(tmp_path: Path, odop_home: Path) -> None:
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "bad.json").write_text(json.dumps({"name": "x", "program": "/bin/true",
                                                "time": "10 minutes"}))
    proc = _run(tmp_path, odop_home, TASKS=str(tasks))
    assert proc.returncode == 0, proc.stderr
    assert _last(proc)["checksum"] == pytest.approx(field_checksum(20, size=1000))
    [run] = (odop_home / "runs").iterdir()  # rank 0 had opened it: it says it never started
    from odop.store.executions import RunStore

    store = RunStore(run / "odop.db", readonly=True)
    assert "SpecError" in store.meta()["start_failed"] and "time" in store.meta()["start_failed"]
    store.close()
    assert proc.stderr.count("odop: disabled on every rank") == 1, proc.stderr


def test_full_run_folder_is_said_once_and_the_simulation_runs_on(tmp_path: Path) -> None:
    with mounted(tmp_path / "home", "size=600k") as home:
        proc = _run(tmp_path, home, STEPS="40", SHOUT="3")
    assert proc.returncode == 0, proc.stderr
    out = _last(proc)
    assert out["checksum"] == pytest.approx(field_checksum(40, size=1000))
    assert proc.stderr.count("starting it again") <= 1, proc.stderr
    said = proc.stderr.count("cannot write the run folder") + proc.stderr.count("disabled on")
    assert said == 1, proc.stderr
    account = out["summary"]["account"]
    assert account["submitted"] + account["journalled"] + account["unwritten"] == 80, account


def test_a_port_in_use_disables_odop_with_the_cause(tmp_path: Path, odop_home: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _run(tmp_path, odop_home, ODOP_SCHEDULER_BIND=f"tcp://127.0.0.1:{port}")
    assert proc.returncode == 0, proc.stderr
    out = _last(proc)
    assert out["checksum"] == pytest.approx(field_checksum(20, size=1000)) and not out["started"]
    assert proc.stderr.count("odop: disabled on every rank") == 1, proc.stderr
    assert "exited before it announced its endpoint" in out["summary"]["disabled"]
    assert "Address already in use" in out["summary"]["disabled"], out["summary"]
