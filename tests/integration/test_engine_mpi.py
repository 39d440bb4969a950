"""Kind ``mpi``: mpiexec -n k on the granted cores, launched from what looks like a rank."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from odop.engine.engine import Engine
from odop.engine.mpi import mpi_argv, ranks, threads_per_rank
from odop.engine.rankpin import cores_of, my_cores, parse_grants, rank_of
from tests.conftest import mpiexec

pytestmark = pytest.mark.mpi

RANK = '''#!/bin/sh
grep Cpus_allowed_list /proc/self/status | cut -f2 > "$1/rank-$PMI_RANK"
echo "$OMP_NUM_THREADS" >> "$1/rank-$PMI_RANK"
'''


def _run_ranks(tmp_path: Path, execution: str, cores: list[int], **extra: object) -> None:
    """Run rank.sh as an mpi task on ``cores`` (``extra``: spec fields, or ``hosts``) and
    wait for it to end well; each rank writes ``rank-<n>``: its CPU list, its threads."""
    script = tmp_path / "rank.sh"
    script.write_text(RANK)
    script.chmod(0o755)
    hosts = extra.pop("hosts", ())
    engine = Engine(tmp_path / "run", cwd=str(tmp_path), fork_server=False, cgroups=None)
    spec = {"kind": "mpi", "target": str(script), "argv": ["{out}"], **extra}
    engine.start(execution, spec, {"out": str(tmp_path)}, cores, hosts=hosts)  # type: ignore[arg-type]
    end, exits = time.monotonic() + 60, []
    while not exits and time.monotonic() < end:
        exits = engine.reap()
        time.sleep(0.05)
    stderr = tmp_path / "run" / "tasks" / execution / "stderr"
    assert exits and exits[0].exit_code == 0, stderr.read_text()


def test_rank_counts_and_threads() -> None:
    assert ranks({}, [2, 3, 4]) == 3 and ranks({"ranks_per_node": 1}, [2, 3]) == 1
    assert threads_per_rank({"ranks_per_node": 1}, [2, 3]) == 2
    line = mpi_argv({}, ["./prog", "x"], [2, 3], {})
    assert line[1:3] == ["-n", "2"] and line[-2:] == ["./prog", "x"]


@pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")
def test_ranks_run_inside_the_grant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMI_RANK", "7")  # the engine runs inside a rank: must not leak
    monkeypatch.setenv("PMI_FD", "99")
    cores = sorted(os.sched_getaffinity(0))
    _run_ranks(tmp_path, "mpi1", cores)
    seen = sorted(p.read_text().split()[0] for p in tmp_path.glob("rank-*"))
    assert len(seen) == len(cores) and not (tmp_path / "rank-7").exists()
    assert seen == sorted(str(c) for c in cores)  # one rank per granted core
    assert {p.read_text().split()[1] for p in tmp_path.glob("rank-*")} == {"1"}


@pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")
def test_more_ranks_than_cores_stay_on_the_grant(tmp_path: Path) -> None:
    core = max(os.sched_getaffinity(0))
    _run_ranks(tmp_path, "mpi2", [core], ranks_per_node=2)
    assert [p.read_text().split()[0] for p in tmp_path.glob("rank-*")] == [str(core)] * 2


def test_a_task_over_several_nodes_gets_a_block_of_ranks_per_host() -> None:
    hosts = [{"host": "a", "cores": [2, 3]}, {"host": "b", "cores": [0, 1]}]
    line = mpi_argv({"drain": True}, ["./prog"], [2, 3], {}, hosts)
    assert line[1:3] == ["-n", "4"] and "a:2,b:2" in line
    pin = line.index("odop.engine.rankpin")
    assert line[pin + 1:] == ["2", "a=2,3;b=0,1", "--drain", "--", "./prog"]
    grants = [[2, 3], [0, 1]]
    assert [cores_of(r, 2, grants) for r in range(4)] == [[2], [3], [0], [1]]
    named = parse_grants("a=2,3;b=0,1")
    # by host name first (Slurm orders the hosts its own way), local rank within it
    assert my_cores({"PMI_RANK": "0", "MPI_LOCALRANKID": "1"}, 2, named, "b") == [1]
    assert my_cores({"PMI_RANK": "3"}, 2, [("h", [2, 3]), ("h", [0, 1])], "h") == [1]
    assert cores_of(1, 1, [[4, 5], [6, 7]]) == [6, 7]  # one rank per node: its whole grant
    assert rank_of({"OMPI_COMM_WORLD_RANK": "3"}) == 3
    with pytest.raises(SystemExit, match="no rank"):
        rank_of({})


@pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")
def test_ranks_over_two_grants_each_stay_on_theirs(tmp_path: Path) -> None:
    """Two 'nodes' on this host (as in the multi-node tests): each rank lands on its own."""
    host = os.uname().nodename
    _run_ranks(tmp_path, "mpi3", [0], hosts=[{"host": host, "cores": [0]},
                                             {"host": host, "cores": [1]}])
    assert (tmp_path / "rank-0").read_text().split()[0] == "0"
    assert (tmp_path / "rank-1").read_text().split()[0] == "1"
