"""Try a 2-node odop job on this machine (root): ``python -m odop.testing.demo``.

Brings the virtual cluster up, submits the embedded-mode script of docs/slurm.md with a
small simulation (one MPI rank per node, each submitting a task per step), prints where
each task ran (node, cores) and tears the cluster down, whatever happens.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from odop.testing import cluster as vc

SIM = '''
import json, os, socket, sys, time
import odop

@odop.task(name="where", time="5s", cpus=1)
def where(out):
    time.sleep(1.0)  # some post-processing: the next task goes to the other node's core
    with open(out, "w") as fh:
        json.dump({"host": socket.gethostname(), "cores": sorted(os.sched_getaffinity(0))}, fh)

if __name__ == "__main__":
    from mpi4py import MPI
    rank = MPI.COMM_WORLD.rank
    odop.start(run_name=sys.argv[sys.argv.index("--run") + 1])
    os.makedirs("out", exist_ok=True)
    for step in range(3):
        odop.submit("where", out=f"out/{socket.gethostname()}-{rank}-{step}.json")
        time.sleep(1.0)
    print(json.dumps({"rank": rank, "summary": odop.stop()}), flush=True)
'''

SCRIPT = """#!/bin/bash
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --time=00:05:00
export ODOP_HOME=$SLURM_SUBMIT_DIR/.odop
srun --cpu-bind=cores python sim.py --run "demo-$SLURM_JOB_ID"
"""


def where_tasks_ran(folder: Path) -> list[dict[str, object]]:
    """What each 'where' task recorded: {host, cores}."""
    return [json.loads(p.read_text()) for p in sorted((folder / "out").glob("*.json"))]


def run(folder: Path) -> int:
    """Up, submit, print, down; the exit code of sbatch."""
    cluster = vc.up(2, share_cores=len(os.sched_getaffinity(0)) < 2)
    try:
        (folder / "sim.py").write_text(SIM)
        (folder / "job.sh").write_text(SCRIPT)
        env = cluster.env(dict(os.environ, PATH=f"{Path(sys.executable).parent}:"
                                                f"{os.environ.get('PATH', '')}"))
        done = cluster.run(1, ["sbatch", "--wait", "-o", "slurm.out", "job.sh"], cwd=folder,
                           env=env, timeout=300, check=False, capture_output=False)
        print((folder / "slurm.out").read_text(), end="")
        for task in where_tasks_ran(folder):
            print(f"task ran on node {task['host']}, cores {task['cores']}")
        return done.returncode
    finally:
        vc.down()


def main() -> int:
    reason = vc.unavailable()
    if reason:
        print(f"odop demo: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="odop-demo-") as folder:
        try:
            return run(Path(folder))
        except vc.ClusterError as exc:
            print(f"odop demo: {exc}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
