"""``python -m odop.engine.rankpin PER GRANTS [--drain] -- PROGRAM ...``: one rank of an mpi
task that spans nodes, placed before it becomes PROGRAM.

The launcher gives each host a block of PER ranks, in the order of GRANTS (each host's
granted cores, ``0,1;4,5``). Rank r is on host r // PER and is pinned to its share of
that host's grant, then lowered below the simulation as every task is (on a remote node
no odop worker started it), then replaced by PROGRAM.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from odop.engine.worker import lower_priority

RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK",
                  "SLURM_PROCID")


def rank_of(env: Mapping[str, str]) -> int:
    """This process's rank, from whichever launcher started it."""
    for name in RANK_VARIABLES:
        if env.get(name, "").isdigit():
            return int(env[name])
    raise SystemExit("rankpin: no rank in the environment (looked for "
                     f"{', '.join(RANK_VARIABLES)})")


def cores_of(rank: int, per: int, grants: list[list[int]]) -> list[int]:
    """Rank ``rank``'s cores: its host's grant split evenly among the host's ``per`` ranks
    (one core each when there are as many ranks as cores)."""
    grant = grants[min(rank // per, len(grants) - 1)]
    local, width = rank % per, max(1, len(grant) // per)
    return grant[local * width:(local + 1) * width] or [grant[local % len(grant)]]


def main(argv: list[str]) -> int:
    if "--" not in argv or len(argv) < 4:
        raise SystemExit("usage: python -m odop.engine.rankpin PER GRANTS [--drain] -- PROGRAM ...")
    split = argv.index("--")
    per, grants = int(argv[0]), [[int(c) for c in g.split(",")] for g in argv[1].split(";")]
    program = argv[split + 1:]
    os.sched_setaffinity(0, cores_of(rank_of(os.environ), per, grants))
    lower_priority("--drain" in argv[2:split])
    os.execvp(program[0], program)
    return 127  # pragma: no cover (execvp does not return)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
