"""The little odop needs from MPI, and its absence handled: mpi4py is imported only when
the program already uses MPI or was started by an MPI launcher."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

Comm = Any
LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "PMIX_RANK", "OMPI_COMM_WORLD_RANK", "MPI_LOCALRANKID")


def world() -> Comm | None:
    """MPI.COMM_WORLD when this process is part of an MPI job, else None."""
    if "mpi4py.MPI" not in sys.modules and not any(v in os.environ for v in LAUNCHER_VARS):
        return None
    from mpi4py import MPI

    return MPI.COMM_WORLD if MPI.Is_initialized() or not MPI.Is_finalized() else None


def node_comm(comm: Comm | None) -> Comm | None:
    """The ranks of ``comm`` that share this node's memory (one communicator per node)."""
    if comm is None:
        return None
    from mpi4py import MPI

    return comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())


def barrier(comm: Comm | None, poll_s: float = 0.01,
            on_wait: Callable[[], object] | None = None) -> None:
    """A barrier that sleeps while it waits, so waiting ranks leave their cores to tasks;
    ``on_wait`` runs at every turn (cheap work that must go on meanwhile)."""
    if comm is None:
        return
    request = comm.Ibarrier()
    while not request.Test():
        if on_wait is not None:
            on_wait()
        time.sleep(poll_s)
