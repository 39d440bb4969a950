"""Item 3 of issue 21: an ``mpi`` task with ``nodes = 2`` runs one rank on each node's grant,
while the simulation's own job step still holds the nodes; a one-node ``mpi`` task runs on
the node it was placed on (inside a job, Hydra would otherwise ``srun`` it onto the first)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from odop.testing.cluster import Cluster
from tests.cluster.jobs import EXTERNAL_HEAD, sbatch

pytestmark = pytest.mark.timeout(180)

SIM = '''#!{python}
# one rank per node: a file per node, then some work while the tasks run
import os, socket, time
open("running-" + socket.gethostname(), "w").close()
open(f"out/{{socket.gethostname()}}.dat", "w").close()
if os.environ["SLURM_PROCID"] == "0":
    open("out/all.span", "w").close()
time.sleep(4)
os.unlink("running-" + socket.gethostname())
'''

RANK = '''#!/bin/sh
# one rank of an mpi task: where it ran, and whether the simulation's step was running
host=$(hostname)
cores=$(grep Cpus_allowed_list /proc/self/status | cut -f2)
running=$([ -e "running-$host" ] && echo yes || echo no)
printf '{"host": "%s", "cores": "%s", "sim_running": "%s", "execution": "%s"}' \\
    "$host" "$cores" "$running" "$ODOP_EXECUTION" > "$1.rank-$PMI_RANK"
'''

SCRIPT = EXTERNAL_HEAD + '''
odop run --run "$RUN" --tasks tasks/ -- srun --ntasks-per-node=1 ./sim
odop status "$RUN" --json > status.json
'''


def _prepare(folder: Path, python: str) -> None:
    (folder / "out").mkdir()
    tasks = folder / "tasks"
    tasks.mkdir()
    for name, text in (("sim", SIM.format(python=python)), ("tasks/rank.sh", RANK)):
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    common = {"kind": "mpi", "program": str(tasks / "rank.sh"), "argv": ["{path}"]}
    (tasks / "span.json").write_text(json.dumps(
        {**common, "name": "span", "nodes": 2, "trigger": {"file": f"{folder}/out/*.span"}}))
    (tasks / "solo.json").write_text(json.dumps(
        {**common, "name": "solo", "trigger": {"file": f"{folder}/out/odop*.dat"}}))


def test_mpi_task_over_two_nodes(cluster: Cluster, tmp_path: Path) -> None:
    _prepare(tmp_path, sys.executable)
    _, out = sbatch(cluster, tmp_path, SCRIPT)
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["account"]["unaccounted"] == 0 and status["account"]["done"] == 3, out
    cores = {n.name: ",".join(map(str, n.cpus)) for n in cluster.nodes}
    span = [json.loads(p.read_text()) for p in sorted((tmp_path / "out").glob("all.span.rank-*"))]
    assert sorted(r["host"] for r in span) == ["odop1", "odop2"], span
    for rank in span:  # each rank on its own node's grant, beside the simulation's step
        assert rank["cores"] == cores[rank["host"]] and rank["sim_running"] == "yes", span
    placed = {e["id"]: e["node"] for e in status["executions"]}
    for node in cores:  # each one-node task on the node it was placed on, on its grant
        solo = json.loads((tmp_path / "out" / f"{node}.dat.rank-0").read_text())
        assert solo["host"] == placed[solo["execution"]], (solo, placed)
        assert solo["cores"] == cores[solo["host"]], solo
