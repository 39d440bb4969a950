"""CPU and wall time per task saved by warm interpreters, on the engine's own start path.

One engine (odop.engine.engine.Engine, as the agent runs it) starts the same short task
``--n`` times one after the other, four ways, interleaved run by run:

- ``script_fresh``: ``python task.py OUT`` (a script that imports numpy and writes a
  file) in a fresh interpreter (the engine's fresh path, as without a fork server);
- ``script_warm``: the same script forked from its zygote, which pre-imported what the
  first run imported (the first runs, while the zygote imports, are dropped);
- ``function_fresh`` / ``function_warm``: a decorated-style function in a module that
  imports numpy and mpi4py, fresh or forked from its module's zygote.

Per way: median wall seconds from ``Engine.start`` to the exit being reaped, and median
CPU seconds of the task (its rusage: start-up, imports and the work). Tasks run at idle
priority: on a busy machine the wall times include waiting for a core (see ``loadavg``).

    python benchmarks/warm.py [--json] [--n 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from odop.engine.engine import Engine  # noqa: E402
from odop.engine.scripts import ScriptBook  # noqa: E402

SCRIPT = '''
import sys
import numpy
numpy.save(sys.argv[1], numpy.arange(1000).reshape(10, 100).sum(axis=0))
'''
MODULE = '''
import numpy
from mpi4py import MPI

def reduce(out):
    numpy.save(out, numpy.arange(1000).reshape(10, 100).sum(axis=0))
'''
WAYS = ("script_fresh", "script_warm", "function_fresh", "function_warm")


def one(engine: Engine, execution: str, spec: dict[str, Any], args: dict[str, Any]
        ) -> tuple[float, float, int | None]:
    """(wall s, CPU s, exit code) of one execution, start to reaped exit."""
    t0 = time.perf_counter()
    engine.start(execution, spec, args, [0])
    while True:
        for e in engine.reap():
            if e.execution == execution:
                return time.perf_counter() - t0, e.cpu_s, e.exit_code
        time.sleep(0.0005)


def measure(n: int, folder: Path) -> dict[str, Any]:
    (folder / "task.py").write_text(SCRIPT)
    (folder / "simmod.py").write_text(MODULE)
    warm = Engine(folder / "run-warm", cwd=str(folder), cgroups=None,
                  scripts=ScriptBook(folder / "profiles.db"))
    fresh = Engine(folder / "run-fresh", cwd=str(folder), cgroups=None, fork_server=False)
    assert warm.server is not None and warm.server.wait_ready()
    specs = {"script": {"kind": "executable", "name": "post", "target": sys.executable,
                        "argv": ["task.py", "{out}"]},
             "function": {"kind": "python", "name": "reduce",
                          "target": f"{folder}/simmod.py:reduce"}}
    rows: dict[str, list[tuple[float, float]]] = {w: [] for w in WAYS}
    try:
        for i in range(n + 5):  # the first five: zygotes still importing, dropped
            for way in WAYS:
                kind, mode = way.split("_")
                engine = warm if mode == "warm" else fresh
                wall, cpu, code = one(engine, f"{way}-{i}", specs[kind],
                                      {"out": str(folder / f"{way}-{i}.npy")})
                if code != 0:
                    raise SystemExit(f"{way} run {i} exited {code}")
                if i >= 5:
                    rows[way].append((wall, cpu))
    finally:
        for engine in (warm, fresh):
            engine.close()
    return {way: {"wall_ms_p50": round(1000 * statistics.median(w for w, _ in r), 1),
                  "cpu_ms_p50": round(1000 * statistics.median(c for _, c in r), 1),
                  "runs": len(r)} for way, r in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--n", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="odop-warm-") as tmp:
        ways = measure(args.n, Path(tmp))
    saved = {kind: {"wall_ms": round(ways[f"{kind}_fresh"]["wall_ms_p50"]
                                     - ways[f"{kind}_warm"]["wall_ms_p50"], 1),
                    "cpu_ms": round(ways[f"{kind}_fresh"]["cpu_ms_p50"]
                                    - ways[f"{kind}_warm"]["cpu_ms_p50"], 1)}
             for kind in ("script", "function")}
    result = {"ways": ways, "saved_per_task": saved, "cpus": len(os.sched_getaffinity(0)),
              "loadavg_1min_at_end": round(os.getloadavg()[0], 2)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for way, row in ways.items():
            print(f"{way:16s} {row}")
        print("saved per task", saved, "loadavg", result["loadavg_1min_at_end"])


if __name__ == "__main__":
    main()
