"""Item 7 of issue 21: bad set-ups get clear errors. A run folder that node 2 does not share,
a node whose host name is not in the job's node list, a packet filter dropping the
scheduler's port, and an agent whose wall clock is off the scheduler's."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from odop.testing.cluster import Cluster
from tests.cluster.conftest import job_env
from tests.cluster.jobs import EXTERNAL_HEAD, sbatch

pytestmark = pytest.mark.timeout(180)

SIM = '''
import json, sys
import odop

@odop.task(name="noop", time="2s", cpus=1)
def noop():
    pass

if __name__ == "__main__":
    from mpi4py import MPI
    odop.start(run_name=sys.argv[1])
    odop.submit("noop")
    summary = odop.stop()
    print(json.dumps({"rank": MPI.COMM_WORLD.rank, "summary": summary}), flush=True)
'''

EMBEDDED = """#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --time=00:05:00
export ODOP_HOME=$SLURM_SUBMIT_DIR/.odop
mkdir -p $ODOP_HOME
srun bash -c 'if [ $SLURM_PROCID = 1 ]; then exec ./rank1.sh; fi
              exec python sim.py "bad-$SLURM_JOB_ID"'
"""


def _embedded(cluster: Cluster, folder: Path, rank1: str) -> dict:
    """Run SIM on both nodes, rank 1 through the shell command ``rank1``; rank 0's summary."""
    (folder / "sim.py").write_text(SIM)
    (folder / "rank1.sh").write_text(f"#!/bin/sh\n{rank1}\n")
    (folder / "rank1.sh").chmod(0o755)
    _, out = sbatch(cluster, folder, EMBEDDED)
    return next(json.loads(ln) for ln in out.splitlines() if ln.startswith('{"rank": 0'))["summary"]


def test_a_run_folder_node_2_does_not_see_disables_odop_saying_so(
        cluster: Cluster, tmp_path: Path) -> None:
    # node 2 sees an empty folder where the run folder is (a node-local file system)
    summary = _embedded(cluster, tmp_path, "exec unshare --mount sh -c 'mount -t tmpfs none "
                        "$ODOP_HOME && exec python sim.py bad-$SLURM_JOB_ID'")
    assert "node odop2 does not see the run folder" in summary["disabled"], summary
    assert "must be on a file system every node of the job sees" in summary["disabled"]
    assert summary["journalled"] == 2  # the simulation ran on, its submissions kept


def test_an_agent_with_another_odop_home_names_the_folder(cluster: Cluster,
                                                          tcp_run: tuple[Path, str],
                                                          tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    done = cluster.run(2, ["odop", "agent", "--run", "net", "--wait", "1"], check=False,
                       env=job_env(ODOP_HOME=str(elsewhere)))
    assert done.returncode == 2, done
    assert "run 'net' not found" in done.stderr and f"$ODOP_HOME = {elsewhere}" in done.stderr
    assert "file system every node sees" in done.stderr


def test_a_host_name_outside_the_node_list_disables_odop_saying_so(
        cluster: Cluster, tmp_path: Path) -> None:
    summary = _embedded(cluster, tmp_path, "exec unshare --uts sh -c 'hostname odop2-alias "
                        "&& exec python sim.py bad-$SLURM_JOB_ID'")
    assert "host name 'odop2-alias' is not in the job's node list (odop1, odop2" \
        in summary["disabled"], summary
    assert "Slurm calls this node 'odop2'" in summary["disabled"]


@pytest.mark.skipif(shutil.which("nft") is None and shutil.which("iptables") is None,
                    reason="no nft or iptables on this machine (apt-get install nftables)")
def test_a_blocked_port_is_named(cluster: Cluster, tcp_run: tuple[Path, str]) -> None:
    home, endpoint = tcp_run
    port = endpoint.rpartition(":")[2]
    _block(cluster, port)
    try:
        done = cluster.run(2, ["odop", "agent", "--run", "net", "--node", "blocked",
                               "--wait", "2"], env=job_env(ODOP_HOME=str(home)), check=False)
    finally:
        _unblock(cluster)
    assert done.returncode == 2, done
    assert f"node blocked cannot reach the scheduler at {endpoint}" in done.stderr, done.stderr
    assert f"is port {port} dropped or rejected by a packet filter" in done.stderr


def _block(cluster: Cluster, port: str) -> None:
    """Node 2's packet filter drops what it sends to ``port`` (nftables, else iptables)."""
    if shutil.which("nft"):
        cluster.run(2, ["nft", f"add table inet odoptest; add chain inet odoptest out "
                               "{ type filter hook output priority 0; }; "
                               f"add rule inet odoptest out tcp dport {port} drop"])
    else:
        cluster.run(2, ["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", port, "-j", "DROP"])


def _unblock(cluster: Cluster) -> None:
    if shutil.which("nft"):
        cluster.run(2, ["nft", "delete table inet odoptest"], check=False)
    else:
        cluster.run(2, ["iptables", "-F", "OUTPUT"], check=False)


SKEW = '''
# sitecustomize: this node's wall clock is off by ODOP_TEST_SKEW_S seconds
import os, socket, time
if socket.gethostname() == os.environ.get("ODOP_TEST_SKEW_NODE"):
    _skew, _time, _time_ns = float(os.environ["ODOP_TEST_SKEW_S"]), time.time, time.time_ns
    time.time = lambda: _time() + _skew
    time.time_ns = lambda: _time_ns() + int(_skew * 1e9)
'''

SKEW_SIM = '''#!{python}
import os, socket, time
for step in range(4):
    open(f"out/{{socket.gethostname()}}-{{step}}.dat", "w").close()
    time.sleep(0.5)
'''


@pytest.mark.parametrize("skew_s", [-20.0, 20.0])
def test_an_agent_clock_off_by_seconds_misfires_nothing(cluster: Cluster, tmp_path: Path,
                                                        skew_s: float) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SKEW)
    (tmp_path / "out").mkdir()
    (tmp_path / "sim").write_text(SKEW_SIM.format(python=sys.executable))
    (tmp_path / "sim").chmod(0o755)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "post.json").write_text(json.dumps(
        {"name": "post", "program": "sleep", "argv": ["0.3"], "time": "2s",
         "trigger": {"file": f"{tmp_path}/out/*.dat"}}))
    script = EXTERNAL_HEAD + '''
odop run --run "$RUN" --tasks tasks/ -- srun --overlap --ntasks-per-node=1 ./sim
odop status "$RUN" --json > status.json
'''
    _, out = sbatch(cluster, tmp_path, script, ODOP_TEST_SKEW_S=str(skew_s),
                    ODOP_TEST_SKEW_NODE="odop2",
                    PYTHONPATH=f"{site}:{job_env()['PYTHONPATH']}")
    status = json.loads((tmp_path / "status.json").read_text())
    runs = status["executions"]
    assert status["account"]["done"] == 8 and status["account"]["unaccounted"] == 0, out
    assert {e["node"] for e in runs} == {"odop1", "odop2"}, runs
    assert all(e["state"] == "done" and e["attempt"] == 0 and e["reason"] == "ok"
               for e in runs), runs
    for e in runs:  # times on the scheduler's clock: started after submitted, ended after
        assert e["submitted_at"] <= e["started_at"] <= e["ended_at"], e
