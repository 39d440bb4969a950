"""The virtual cluster (odop.testing.cluster) for the tests marked ``cluster``: two nodes of
one core each with Slurm, brought up once per session and always torn down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.testing import cluster as vc
from odop.testing import slurmd

REPO = Path(__file__).resolve().parents[2]
STATE = Path("/tmp/odop-cluster-tests")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark this folder's tests ``cluster``; the documented demo first: it brings up and
    removes a cluster of its own, which would take the session's down with it."""
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.cluster)
    items.sort(key=lambda item: Path(str(item.fspath)).name != "test_demo.py")


@pytest.fixture(scope="session")
def cluster() -> Iterator[vc.Cluster]:
    """Two nodes, odop1 and odop2, with Slurm; skipped with the reason where impossible."""
    reason = vc.unavailable() or slurmd.unavailable()
    if reason:
        pytest.skip(f"virtual cluster: {reason}")
    try:
        up = vc.up(2, state=STATE, share_cores=len(os.sched_getaffinity(0)) < 2)
    except vc.ClusterError as exc:
        pytest.skip(f"virtual cluster: {exc}")
    try:
        yield up
    finally:
        problems = vc.down(STATE)
        assert not problems and not vc.leftovers(), (problems, vc.leftovers())


def job_env(**extra: str) -> dict[str, str]:
    """Environment for commands on the cluster: this checkout and its virtual environment
    first (a job inherits it from sbatch, as from a user's shell)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for key in [k for k in env if k.startswith(("SLURM_", "ODOP_"))]:
        del env[key]
    env.update(extra)
    return env


@pytest.fixture
def tcp_run(cluster: vc.Cluster, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A scheduler bound to tcp on odop1 and an agent on odop2: (ODOP_HOME, endpoint)."""
    env = job_env(ODOP_HOME=str(tmp_path))
    sched = cluster.popen(1, ["odop", "scheduler", "--run", "net", "--bind", "tcp://*:*"],
                          env=env, cwd=tmp_path)
    announced = tmp_path / "runs" / "net" / "scheduler.endpoint"
    deadline = time.monotonic() + 30
    while not announced.exists() and sched.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert announced.exists(), f"scheduler exited {sched.poll()}"
    agent = cluster.popen(2, ["odop", "agent", "--run", "net"], env=env, cwd=tmp_path)
    try:
        yield tmp_path, announced.read_text().strip()
    finally:
        for proc in (agent, sched):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
