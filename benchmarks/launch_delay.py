"""The delay ``odop run`` adds before the program it wraps starts.

The program writes ``time.time()`` on its first line; the benchmark notes the time just
before it starts the command. Two commands, interleaved pair by pair (``--n`` pairs):
the program alone (``python -c PROG``) and the same under ``odop run -- python -c PROG``
(a fresh run each time, no task). Per pair the delay added is the wrapped start less the
plain one; reported: the medians (ms), the median delay added, and the budget of
issue #23 (50 ms where a core is idle) beside it. Also ``odop run --help``'s wall time:
what the command's own imports cost before it can do anything.

    python benchmarks/launch_delay.py [--json] [--n 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PROG = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time()))"
BUDGET_MS = 50.0


def first_line_after(argv: list[str], stamp: Path, env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting ``argv`` to the program's first line (read from ``stamp``)."""
    stamp.unlink(missing_ok=True)
    t0 = time.time()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=120)
    return float(stamp.read_text()) - t0


def measure(n: int, folder: Path) -> dict[str, Any]:
    env = dict(os.environ, ODOP_HOME=str(folder / "home"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    stamp = folder / "first-line"
    program = [sys.executable, "-c", PROG, str(stamp)]
    plain, wrapped = [], []
    for i in range(n + 1):  # the first pair warms the file cache and is dropped
        a = first_line_after(program, stamp, env, folder)
        b = first_line_after([sys.executable, "-m", "odop", "run", "--run", f"ld-{i}", "--",
                              *program], stamp, env, folder)
        if i:
            plain.append(a)
            wrapped.append(b)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "odop", "run", "--help"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    cli_s = time.perf_counter() - t0
    added = [b - a for a, b in zip(plain, wrapped, strict=True)]
    return {"pairs": n, "plain_ms_p50": round(1000 * statistics.median(plain), 1),
            "wrapped_ms_p50": round(1000 * statistics.median(wrapped), 1),
            "added_ms_p50": round(1000 * statistics.median(added), 1),
            "added_ms_min": round(1000 * min(added), 1),
            "added_ms_max": round(1000 * max(added), 1),
            "odop_run_help_ms": round(1000 * cli_s, 1), "budget_ms": BUDGET_MS,
            "within_budget": statistics.median(added) * 1000 <= BUDGET_MS,
            "cpus": len(os.sched_getaffinity(0)),
            "loadavg_1min_at_end": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n", type=int, default=10, help="pairs (default 10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="odop-launch-") as tmp:
        result = measure(args.n, Path(tmp))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:22s} {value}")


if __name__ == "__main__":
    main()
