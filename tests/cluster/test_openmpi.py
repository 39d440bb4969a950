"""Open MPI on the virtual cluster (issue 21): wrapped mode, ``odop run -- mpirun``, across
both nodes. Under Slurm, Open MPI's ``mpirun`` starts the ranks of its own node itself and
``srun``s an ``orted`` on the other node, whose children the ranks are there: each node's
agent watches its rank at its real CPU use, and every task is done. The script is the one
of docs/slurm.md."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from odop.testing.cluster import Cluster
from odop.testing.demo import where_tasks_ran
from odop_obs import read_samples
from tests.cluster.conftest import REPO
from tests.cluster.jobs import prepare, sbatch

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(shutil.which("mpirun.openmpi") is None,
                                 reason="no Open MPI (Debian: apt-get install openmpi-bin)")]

HEAD = """#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --time=00:05:00
export ODOP_HOME=$SLURM_SUBMIT_DIR/.odop
RUN="sim-$SLURM_JOB_ID"
"""


def doc_script() -> str:
    """The Open MPI lines of docs/slurm.md as a job: as root, ``mpirun.openmpi`` (the venv's
    ``mpirun`` is MPICH's), its bindings reported."""
    doc = (REPO / "docs" / "slurm.md").read_text()
    section = doc[doc.index("## Open MPI's `mpirun`"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    return HEAD + block.replace("-- mpirun ", "-- mpirun.openmpi --allow-run-as-root "
                                             "--report-bindings ")


def test_wrapped_mpirun_across_two_nodes(cluster: Cluster, tmp_path: Path) -> None:
    prepare(tmp_path)
    job, out = sbatch(cluster, tmp_path, doc_script())
    ran = where_tasks_ran(tmp_path)
    assert len(ran) == 6 and "6 done, 0 unaccounted" in out, out
    run = tmp_path / ".odop" / "runs" / f"sim-{job}"
    for node in cluster.nodes:  # the rank itself, busy on its core, not mpirun or orted
        ranks = [p for s in read_samples(run / "samples", node.name)
                 for p in s["processes"]["watched"] if p["role"] == "sim" and p["name"] == "sim"]
        assert ranks and max(p["cpu"] for p in ranks) > 0.5, (node.name, ranks)
    assert "[odop2:" in out and "MCW rank 1" in out, out  # --report-bindings, from odop2
