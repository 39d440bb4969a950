"""The launch line of an ``mpi`` task: ``mpiexec -n k`` confined to the grant.

The launcher is started pinned to the grant (odop.engine.spawn) and inherits that mask;
MPICH's Hydra would still re-bind ranks if told to (``-bind-to core`` binds rank 0 to core 0
whatever the mask), so with Hydra each rank is bound explicitly to one granted core
(``-bind-to user:c0,c1,...``, ranks round-robin over them); with Open MPI binding is
turned off so the inherited mask holds. Hydra starts a one-node task's ranks here
(``-launcher fork``): inside a Slurm job it would otherwise ``srun`` them onto the job's
first node. The engine's environment has the outer launcher's variables stripped
(odop.engine.spawn.clean_env) so the inner mpiexec does not take itself for a rank; a task
across nodes inside a Slurm job gets ``SLURM_OVERLAP=1`` (:func:`launch_env`), so the step
the launcher starts on the other nodes shares their cores with the simulation's step
instead of waiting for it to end.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any


def ranks(spec: Mapping[str, Any], cores: Sequence[int]) -> int:
    """Ranks to start on one node: ``ranks_per_node``, or one per granted core."""
    return max(1, int(spec.get("ranks_per_node") or len(cores)))


def threads_per_rank(spec: Mapping[str, Any], cores: Sequence[int]) -> int:
    """Threads each rank may use so that the ranks of one node fill, not exceed, the grant."""
    per_node = spec.get("ranks_per_node") or len(cores)
    return max(1, len(cores) // max(1, int(per_node)))


def launcher(path: str | None = None) -> str:
    """The mpiexec to use: the one beside this Python (a venv's mpich), else PATH's."""
    local = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(local, os.X_OK):
        return local
    return shutil.which("mpiexec", path=path) or "mpiexec"


@functools.lru_cache(maxsize=8)
def flavour(program: str) -> str:
    """``"hydra"`` (MPICH, Intel MPI), ``"openmpi"`` or ``"other"``, from ``--version``."""
    try:
        out = subprocess.run([program, "--version"], capture_output=True, text=True,
                             timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return "other"
    if "HYDRA" in out or "Intel(R) MPI" in out:
        return "hydra"
    return "openmpi" if "Open MPI" in out or "OpenRTE" in out else "other"


def mpi_argv(spec: Mapping[str, Any], argv: Sequence[str], cores: Sequence[int],
             env: Mapping[str, str], hosts: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """``mpiexec -n k [binding] argv...`` for one node's grant, or, across ``hosts``
    (``{"host", "cores"}`` each, this node first), a block of ranks per host, each rank
    pinned to its host's grant by odop.engine.rankpin."""
    program = launcher(env.get("PATH"))
    kind = flavour(program)
    if len(hosts) > 1:
        return _across(program, kind, spec, argv, hosts)
    line = [program, "-n", str(ranks(spec, cores))]
    if kind == "hydra":
        line += ["-launcher", "fork", "-bind-to", "user:" + ",".join(str(c) for c in cores)]
    elif kind == "openmpi":
        line += ["--bind-to", "none"]
    return line + list(argv)


def _across(program: str, kind: str, spec: Mapping[str, Any], argv: Sequence[str],
            hosts: Sequence[Mapping[str, Any]]) -> list[str]:
    """The launch line of an mpi task over several nodes' grants (equal in size)."""
    per = ranks(spec, hosts[0]["cores"])
    slots = ",".join(f"{h['host']}:{per}" for h in hosts)
    line = [program, "-n", str(per * len(hosts))]
    if kind == "openmpi":
        line += ["--host", slots, "--bind-to", "none"]
    else:
        line += ["-hosts", slots, "-bind-to", "none"]
    grants = ";".join(f"{h['host']}=" + ",".join(str(int(c)) for c in h["cores"])
                      for h in hosts)
    pin = [sys.executable, "-m", "odop.engine.rankpin", str(per), grants]
    return line + pin + (["--drain"] if spec.get("drain") else []) + ["--", *argv]


def launch_env(env: Mapping[str, str], hosts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Variables the launcher of a task over several ``hosts`` needs: inside a Slurm job,
    ``SLURM_OVERLAP=1`` for the ``srun`` it runs (Slurm 22.05 makes a step wait for cores
    that another step holds otherwise)."""
    return {"SLURM_OVERLAP": "1"} if len(hosts) > 1 and env.get("SLURM_JOB_ID") else {}
