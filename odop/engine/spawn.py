"""Start a task's process: pinned, own session, output straight to files.

Affinity is inherited from the *thread* that forks, so the engine sets its own thread's mask
to the grant just around ``posix_spawn``: every thread and child the task ever makes starts
inside the grant, with no window where it runs elsewhere. The task's priority is lowered by
the worker shim itself before any user code runs (see odop.engine.worker).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence

from odop.errors import OdopError

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS")


class SpawnError(OdopError, OSError):
    """The task's process could not be started (missing program, bad folder, no cores)."""


def spawn(argv: Sequence[str], *, cores: Sequence[int], env: Mapping[str, str],
          cwd: str | os.PathLike[str], stdout: str | os.PathLike[str],
          stderr: str | os.PathLike[str]) -> int:
    """Start ``argv`` pinned to ``cores`` in a new session; return its pid."""
    program = shutil.which(argv[0], path=env.get("PATH"))
    if program is None:
        raise SpawnError(f"program {argv[0]!r} not found on PATH")
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(stdout), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, str(stderr), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600),
    ]
    here = os.getcwd()
    try:
        with thread_pinned(cores):
            os.chdir(cwd)
            return os.posix_spawn(program, list(argv), dict(env), file_actions=actions,
                                  setsid=True)
    except OSError as exc:
        raise SpawnError(f"cannot start {argv[0]!r} on cores {list(cores)}: {exc}") from exc
    finally:
        os.chdir(here)


@contextlib.contextmanager
def thread_pinned(cores: Iterable[int]) -> Iterator[None]:
    """Set the calling thread's CPU mask to ``cores`` for the block, then restore it: a
    process forked or spawned inside starts on ``cores`` from its first instruction."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


def thread_env(threads: int) -> dict[str, str]:
    """Thread-count variables that keep common runtimes inside the grant."""
    return {var: str(threads) for var in THREAD_VARS}


MPI_ENV_PREFIXES = ("PMI_", "PMIX_", "HYDRA_", "MPIR_", "MPI_LOCAL", "OMPI_", "I_MPI_", "MPICH_",
                    "SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP", "PALS_", "MV2_")


def clean_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without the MPI launcher's per-rank variables, which would make a
    process started from a rank believe it is that rank (and confuse the launcher)."""
    return {k: v for k, v in env.items() if not k.startswith(MPI_ENV_PREFIXES)}


def all_cpus() -> set[int]:
    """Every CPU this process may be allowed (its cgroup's cpuset), whatever its mask now."""
    import psutil

    proc = psutil.Process()
    current = proc.cpu_affinity()
    proc.cpu_affinity([])  # psutil: an empty list means every eligible CPU
    eligible = set(proc.cpu_affinity() or [])
    proc.cpu_affinity(current)
    return eligible


def cores_beside(masks: Iterable[set[int]]) -> set[int]:
    """The node's cores outside the ``masks`` of bound ranks (a mask covering the node is
    an unbound rank), when any remain; every core otherwise."""
    cpus = all_cpus()
    bound = set().union(*(m for m in masks if m < cpus))
    return (cpus - bound) or cpus


def keep_off(pids: Sequence[int]) -> None:
    """Run this process on the cores beside those ``pids`` are bound to (see
    :func:`cores_beside`)."""
    masks = []
    for pid in pids:
        with contextlib.suppress(OSError):
            masks.append(os.sched_getaffinity(pid))
    os.sched_setaffinity(0, cores_beside(masks))
