"""Example task functions: one plain (declared in reduce.toml), one decorated."""

from __future__ import annotations

import odop.tasks as ot


def reduce(path: str) -> str:
    """Write the mean of a snapshot next to it; returns the output path."""
    import numpy as np

    data = np.load(path)
    out = path + ".mean.txt"
    with open(out, "w") as fh:
        fh.write(f"{float(data.mean())}\n")
    return out


@ot.task(name="watch_log", time="1s", cpus="250m", trigger={"line": "run.log"})
def watch_log(line: str, path: str, lineno: int) -> None:
    """Print lines of the simulation log that mention an error."""
    if "ERROR" in line:
        print(f"{path}:{lineno}: {line}")
