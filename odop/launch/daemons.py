"""Starting odop's own processes (scheduler, agents) from a simulation rank, safely.

They get a clean environment (no MPI launcher variables, so they are not mistaken for a
rank), their own session (the launcher's signals to the ranks do not reach them), stdio on
log files in the run folder (the launcher never waits for their output), and the rank's pid
to watch: the kernel signals them when the rank that started them dies. They start on the
cores beside the ranks' (every core when none is spare), so that not even their interpreter's
start-up takes time from a rank.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Sequence

from odop.engine.spawn import clean_env, cores_beside, thread_pinned
from odop.paths import RunPaths


def spawn_daemon(role: str, args: Sequence[str], paths: RunPaths, node: str,
                 rank_masks: Iterable[set[int]] = ()) -> subprocess.Popen:
    """Run ``python -m odop <role> ...`` detached, logging to ``logs/<role>-<node>.log``,
    on the cores beside ``rank_masks`` (the CPU masks of the node's ranks)."""
    log = open(paths.logs / f"{role}-{node}.log", "ab")  # noqa: SIM115 (owned by the child)
    argv = [sys.executable, "-m", "odop", role, "--run", str(paths.root),
            "--parent-pid", str(os.getpid()), *args]
    try:
        with thread_pinned(cores_beside(rank_masks)):
            return subprocess.Popen(argv, env=clean_env(os.environ), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, close_fds=True)
    finally:
        log.close()
