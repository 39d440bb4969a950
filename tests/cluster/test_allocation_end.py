"""The allocation's end comes from the real job (#21 item 4): in a 1-minute job, a task
that cannot end before the job does is not started; the run drains what can, its account
says what was left (queued, not lost), and ``odop export`` in the job script carries it to
a later job, after which nothing is left unaccounted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from odop.testing.cluster import Cluster
from tests.cluster.jobs import sbatch

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(200)]

SCRIPT = """#!/bin/bash
#SBATCH --nodes=1
#SBATCH --time=1
#SBATCH --signal=B:USR1@30
export ODOP_HOME=$SLURM_SUBMIT_DIR/.odop
RUN="end-$SLURM_JOB_ID"
odop run --run "$RUN" --tasks tasks --json -- sh -c 'touch out/a.quick out/b.long' > run.json
echo "odop run exited $?"
odop export "$RUN" --out later.sbatch --json > export.json
odop status "$RUN" --json > status.json
"""

TASKS = [
    {"name": "quick", "program": "/bin/true", "time": "1s", "trigger": {"file": "out/*.quick"}},
    {"name": "long", "program": "/bin/sleep", "argv": ["300"], "time": "10min",
     "trigger": {"file": "out/*.long"}},
]


def test_a_task_that_would_outlast_the_job_is_exported_not_lost(cluster: Cluster,
                                                                 tmp_path: Path) -> None:
    folder = tmp_path / "job"
    (folder / "out").mkdir(parents=True)
    (folder / "tasks").mkdir()
    (folder / "tasks" / "t.json").write_text(json.dumps(TASKS))
    _, out = sbatch(cluster, folder, SCRIPT, timeout=150)
    assert "odop run exited 4" in out, out  # the program succeeded; work was left
    account = json.loads((folder / "run.json").read_text())["account"]
    assert (account["done"], account["queued"], account["unaccounted"]) == (1, 1, 0), account
    exported = json.loads((folder / "export.json").read_text())["exported"]
    assert [x["name"].split("-")[0] for x in exported] == ["long"]
    assert "sleep 300" in (folder / "later.sbatch").read_text()
    after = json.loads((folder / "status.json").read_text())["account"]
    assert (after["exported"], after["queued"], after["unaccounted"]) == (1, 0, 0), after
