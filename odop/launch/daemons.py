"""Starting odop's own processes (scheduler, agents) from a simulation rank, safely.

They get a clean environment (no MPI launcher variables, so they are not mistaken for a
rank), their own session (the launcher's signals to the ranks do not reach them), stdio on
log files in the run folder (the launcher never waits for their output), and the rank's pid
to watch: the kernel signals them when the rank that started them dies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from odop.engine.spawn import clean_env
from odop.paths import RunPaths


def spawn_daemon(role: str, args: Sequence[str], paths: RunPaths, node: str) -> subprocess.Popen:
    """Run ``python -m odop <role> ...`` detached, logging to ``logs/<role>-<node>.log``."""
    log = open(paths.logs / f"{role}-{node}.log", "ab")  # noqa: SIM115 (owned by the child)
    argv = [sys.executable, "-m", "odop", role, "--run", str(paths.root),
            "--parent-pid", str(os.getpid()), *args]
    try:
        return subprocess.Popen(argv, env=clean_env(os.environ), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    finally:
        log.close()
