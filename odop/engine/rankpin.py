"""``python -m odop.engine.rankpin PER GRANTS [--drain] -- PROGRAM ...``: one rank of an mpi
task that spans nodes, placed before it becomes PROGRAM.

The launcher gives each host a block of PER ranks. GRANTS names each host's granted cores
(``n1=0,1;n2=4,5``). A rank takes the grant of its own host name (``os.uname().nodename``,
the name the agents report) when exactly one host has it, else that of host r // PER in
the order of GRANTS (several "nodes" on one host); it is pinned to its local rank's share
of that grant, then lowered below the simulation as every task is (on a remote node no odop
worker started it), then replaced by PROGRAM. The host name matters under Slurm: Hydra
``srun``s its proxies, and Slurm orders the nodes its own way, not as GRANTS does.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from odop.engine.worker import lower_priority

RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK",
                  "SLURM_PROCID")
LOCAL_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")


def rank_of(env: Mapping[str, str]) -> int:
    """This process's rank, from whichever launcher started it."""
    for name in RANK_VARIABLES:
        if env.get(name, "").isdigit():
            return int(env[name])
    raise SystemExit("rankpin: no rank in the environment (looked for "
                     f"{', '.join(RANK_VARIABLES)})")


def cores_of(rank: int, per: int, grants: list[list[int]]) -> list[int]:
    """Rank ``rank``'s cores by block order: host r // per's grant, its share r % per."""
    return share(grants[min(rank // per, len(grants) - 1)], rank % per, per)


def share(grant: list[int], local: int, per: int) -> list[int]:
    """Local rank ``local``'s part of a host's grant split evenly among its ``per`` ranks
    (one core each when there are as many ranks as cores)."""
    width = max(1, len(grant) // per)
    return grant[local * width:(local + 1) * width] or [grant[local % len(grant)]]


def parse_grants(text: str) -> list[tuple[str, list[int]]]:
    """``n1=0,1;n2=4`` as [(host, cores)]; a grant without ``host=`` has the host ''."""
    pairs = [g.rpartition("=")[::2] for g in text.split(";")]
    return [(host, [int(c) for c in cores.split(",")]) for host, cores in pairs]


def my_cores(env: Mapping[str, str], per: int, grants: list[tuple[str, list[int]]],
             host: str) -> list[int]:
    """This rank's cores on ``host``: by host name when it names one grant, else by block."""
    rank = rank_of(env)
    names = [name for name, _ in grants]
    if names.count(host) != 1:
        return cores_of(rank, per, [cores for _, cores in grants])
    local = next((int(env[v]) for v in LOCAL_VARIABLES if env.get(v, "").isdigit()), rank % per)
    return share(grants[names.index(host)][1], local, per)


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv) < 4:
        raise SystemExit("usage: python -m odop.engine.rankpin PER GRANTS [--drain] -- PROGRAM ...")
    split = argv.index("--")
    per, grants = int(argv[0]), parse_grants(argv[1])
    program = argv[split + 1:]
    os.sched_setaffinity(0, my_cores(os.environ, per, grants, os.uname().nodename))
    lower_priority("--drain" in argv[2:split])
    os.execvp(program[0], program)
    return 127  # pragma: no cover (execvp does not return)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
