"""Example task functions: one plain (declared in reduce.toml), one decorated."""

from __future__ import annotations

import odop.tasks as ot


def reduce(path: str) -> str:
    """Write the mean of a snapshot next to it; returns the output path.

    Idempotent, as odop runs a task at least once (after a crash, again): the output is
    named after its input, written under a name of this execution and attempt, and renamed
    into place, so a second run writes the same file and a run killed halfway leaves no
    half-written one."""
    import os

    import numpy as np

    import odop

    data = np.load(path)
    out = path + ".mean.txt"
    ctx = odop.context()
    tmp = f"{out}.{ctx.execution_id}-{ctx.attempt}.tmp" if ctx else f"{out}.tmp"
    with open(tmp, "w") as fh:
        fh.write(f"{float(data.mean())}\n")
    os.replace(tmp, out)
    return out


@ot.task(name="watch_log", time="1s", cpus="250m", trigger={"line": "run.log"})
def watch_log(line: str, path: str, lineno: int) -> None:
    """Print lines of the simulation log that mention an error."""
    if "ERROR" in line:
        print(f"{path}:{lineno}: {line}")
