"""What the cluster tests submit: a simulation, its tasks, and the sbatch scripts of
docs/slurm.md as the doc writes them."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from odop.testing.cluster import Cluster
from odop.testing.demo import SIM as EMBEDDED
from tests.cluster.conftest import REPO, job_env

PROGRAM = '''#!{python}
# an unchanged simulation: busy on its core, writes a snapshot per step
import os, socket, sys, time
rank = os.environ.get("OMPI_COMM_WORLD_RANK") or os.environ.get("SLURM_PROCID", "0")
for step in range(3):
    end = time.time() + 1.0
    while time.time() < end:
        pass
    with open(f"out/{{socket.gethostname()}}-{{rank}}-{{step}}.dat", "w") as fh:
        fh.write(open(sys.argv[1]).read())
'''

TASK = '''
import json, os, socket

def where(path):
    with open(path + ".json", "w") as fh:
        json.dump({"host": socket.gethostname(), "cores": sorted(os.sched_getaffinity(0))}, fh)
'''

EXTERNAL_HEAD = """#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --time=00:05:00
export ODOP_HOME=$SLURM_SUBMIT_DIR/.odop
RUN="sim-$SLURM_JOB_ID"
R=$ODOP_HOME/runs/$RUN
odop scheduler --run "$RUN" --bind "tcp://*:*" &
while [ ! -e $R/scheduler.endpoint ]; do sleep 0.1; done
srun --overlap --cpu-bind=none odop agent --run "$RUN" &
while [ ! -e $R/agents/odop1.pid ] || [ ! -e $R/agents/odop2.pid ]; do sleep 0.1; done
"""
"""The start of a 2-node job with a tcp scheduler on the batch node and an agent per node
(external mode, each started once the one before has come up); ``$RUN`` names the run."""


def doc_scripts() -> dict[str, str]:
    """The bash blocks of docs/slurm.md that are sbatch scripts, by their first comment-free
    ``odop``/``srun`` line's mode: embedded, wrapped, external."""
    text = (REPO / "docs" / "slurm.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    scripts = [b for b in blocks if b.startswith("#!/bin/bash\n#SBATCH")]
    modes = {}
    for script in scripts:
        mode = ("external" if "odop agent" in script else
                "wrapped" if "odop run" in script else "embedded")
        modes[mode] = script
    return modes


def as_submitted(script: str) -> str:
    """The script less its ``# site specific`` lines (modules, the user's venv)."""
    return "".join(ln for ln in script.splitlines(keepends=True)
                   if not ln.rstrip().endswith("# site specific"))


def prepare(folder: Path) -> None:
    """A submit folder: sim.py (embedded), ./sim and input.nml (wrapped), tasks/, odop.toml."""
    (folder / "out").mkdir(parents=True)
    (folder / "sim.py").write_text(EMBEDDED)
    sim = folder / "sim"
    sim.write_text(PROGRAM.format(python=sys.executable))
    sim.chmod(0o755)
    (folder / "input.nml").write_text("&input n=3 /\n")
    tasks = folder / "tasks"
    tasks.mkdir()
    (tasks / "post.py").write_text(TASK)
    (tasks / "where.json").write_text(json.dumps(
        {"name": "where", "function": "post:where", "trigger": {"file": f"{folder}/out/*.dat"}}))
    (folder / "odop.toml").write_text("[odop]\n")


def sbatch(cluster: Cluster, folder: Path, script: str, timeout: float = 120,
           **env: str) -> tuple[str, str]:
    """Submit ``script`` from node 1 in ``folder`` and wait: (job id, its output)."""
    return sbatch_wait(sbatch_start(cluster, folder, script, **env), folder, timeout)


def sbatch_start(cluster: Cluster, folder: Path, script: str,
                 **env: str) -> subprocess.Popen[str]:
    """``sbatch --wait`` of ``script`` from node 1 in ``folder``, running."""
    path = folder / "job.sh"
    path.write_text(script)
    return cluster.popen(1, ["sbatch", "--parsable", "--wait", "-o", "slurm-%j.out", str(path)],
                         cwd=folder, env=cluster.env(job_env(**env)), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # type: ignore[return-value]


def sbatch_wait(proc: subprocess.Popen[str], folder: Path,
                timeout: float = 120) -> tuple[str, str]:
    """Wait for a job started by :func:`sbatch_start`: (job id, its output); it must exit 0."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    job = stdout.strip().split(";")[0]
    out = (folder / f"slurm-{job}.out").read_text() if job else ""
    assert proc.returncode == 0, f"sbatch exited {proc.returncode}: {stderr}\n{out}"
    return job, out
