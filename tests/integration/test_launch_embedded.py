"""Embedded mode over a split communicator: only its ranks run odop; one scheduler, one
agent for the node, every rank registered with pid, host and cores."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec
from tests.integration.helpers import components, executions

pytestmark = [pytest.mark.mpi, pytest.mark.slow,
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]

SIM = '''
import json, sys
import odop

@odop.task(name="touch", cpus=1)
def touch(path):
    open(path, "w").write("x")

if __name__ == "__main__":
    from mpi4py import MPI
    world = MPI.COMM_WORLD
    sub = world.Split(color=0 if world.rank < 2 else 1, key=world.rank)
    if world.rank < 2:
        run = odop.start(run_name="split", comm=sub)
        odop.submit("touch", path=f"{sys.argv[1]}/t{sub.rank}")
        summary = odop.stop()
        if sub.rank == 0:
            print(json.dumps({"run": str(run.root), "summary": summary}), flush=True)
    world.Barrier()
'''


def test_split_communicator(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "sim.py").write_text(SIM)
    argv = [str(mpiexec()), "-n", "3", sys.executable, "sim.py", str(tmp_path)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=tmp_path,
                          env=child_env())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    drained = {k: out["summary"][k] for k in ("drained", "done", "failed")}
    assert drained == {"drained": True, "done": 2, "failed": 0}
    account = out["summary"]["account"]
    assert account["unaccounted"] == 0 and account["done"] == 2
    run_dir = Path(out["run"])
    assert sorted(p.name for p in tmp_path.glob("t*")) == ["t0", "t1"]
    roles = sorted(c["role"] for c in components(run_dir))
    assert roles == ["agent", "scheduler"]
    nodes = list((run_dir / "nodes").glob("*.json"))
    assert len(nodes) == 1
    ranks = json.loads(nodes[0].read_text())["ranks"]
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    assert all(r["pid"] > 0 and r["host"] and r["cores"] for r in ranks)
    assert len(executions(run_dir)) == 2


def test_external_scheduler_is_used_not_duplicated(tmp_path: Path, odop_home: Path) -> None:
    from tests.conftest import REPO
    from tests.integration.helpers import wait_for, write_sim

    scheduler = subprocess.Popen([sys.executable, str(REPO / "scripts" / "scheduler.py"),
                                  "--run", "ext"], env=child_env(), stderr=subprocess.PIPE)
    run_dir = odop_home / "runs" / "ext"
    wait_for(lambda: (run_dir / "scheduler.endpoint").exists(), 30, "the endpoint file")
    sim = write_sim(tmp_path)
    (tmp_path / "out").mkdir()
    proc = subprocess.run([sys.executable, str(sim), str(tmp_path / "out"), "2", "plain"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env=child_env(RUN_NAME="ext"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["summary"]["done"] == 2
    assert scheduler.wait(20) == 0
    schedulers = [c for c in components(run_dir) if c["role"] == "scheduler"]
    assert [c["pid"] for c in schedulers] == [scheduler.pid]


UNBOUND = '''
import odop

odop.start()
print(odop.stop().get("drained"), flush=True)
'''


def test_unbound_ranks_are_said_once_at_start(tmp_path: Path, odop_home: Path) -> None:
    """MPICH leaves ranks unbound by default: odop.start() says so once for the job,
    with the flag that binds them; bound ranks hear nothing."""
    (tmp_path / "sim.py").write_text(UNBOUND)
    said = {}
    for bind in ([], ["-bind-to", "core"]):
        argv = [str(mpiexec()), "-n", "2", *bind, sys.executable, "sim.py"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=tmp_path,
                              env=child_env())
        assert proc.returncode == 0, proc.stderr
        said[bool(bind)] = proc.stderr.count("are not bound to cores")
    assert said == {False: 1, True: 0}
