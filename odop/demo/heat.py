"""Demo MPI simulation: 2-D heat equation that hands its post-processing to odop.

    python -m odop.demo.heat --out DIR [--nx 512 --ny 512 --steps 200 --every 20]
        [--mode odop|none|after] [--run NAME] [--config PATH]
        [--compute-scale N] [--io-sleep S] [--json]
    mpiexec -n 4 python -m odop.demo.heat --out DIR --mode odop

Every ``--every`` steps the ranks gather the field on rank 0 (``Gatherv``), which
writes one snapshot file and submits the ``reduce`` and ``compress`` tasks of
:mod:`odop.demo.tasks` for it. Gathering keeps one file per snapshot whatever the
rank count, so the outputs, their number and the final checksum do not depend on
it; the price is one field's worth of traffic to rank 0 per snapshot.

``--compute-scale N`` does each step as N stencil sweeps of 1/N the time step
(N times the compute and halo exchanges, same physical time). ``--io-sleep S``
sleeps S seconds per step inside ``phase("io")`` to emulate an I/O or GPU wait that
leaves the CPU idle. With ``--json`` rank 0 prints one JSON line (see :func:`run`).

mpi4py is imported only in :func:`main`: the task worker imports this package to
find the task functions and must not initialise MPI.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odop.cli.argtypes import positive_int, seconds
from odop.demo import layout
from odop.demo.runtime import MODES, Runtime, make_runtime
from odop.demo.solver import Block, advance, gather, make_block
from odop.demo.tasks import field_digest


@dataclass(frozen=True)
class Params:
    """One run of the demo; sizes in grid cells, times in seconds."""

    out: str
    nx: int = 512
    ny: int = 512
    steps: int = 200
    every: int = 20
    mode: str = "after"
    run: str | None = None
    config: str | None = None
    compute_scale: int = 1
    io_sleep: float = 0.0


def parse_args(argv: list[str] | None = None) -> tuple[Params, bool]:
    """The run's parameters and whether to print JSON."""
    p = argparse.ArgumentParser(prog="python -m odop.demo.heat", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder (snapshots and task outputs)")
    p.add_argument("--nx", type=positive_int, default=512, help="grid columns")
    p.add_argument("--ny", type=positive_int, default=512, help="grid rows (split over ranks)")
    p.add_argument("--steps", type=positive_int, default=200, help="time steps")
    p.add_argument("--every", type=positive_int, default=20, help="steps between snapshots")
    p.add_argument("--mode", choices=MODES, default="after", help="how tasks run")
    p.add_argument("--run", default=None, help="odop run name (mode odop)")
    p.add_argument("--config", default=None, help="odop config file (mode odop)")
    p.add_argument("--compute-scale", type=positive_int, default=1, help="stencil sweeps per step")
    p.add_argument("--io-sleep", type=seconds, default=0.0, help="idle seconds per step")
    p.add_argument("--json", action="store_true", help="rank 0 prints one JSON line")
    a = p.parse_args(argv)
    as_json = a.json
    del a.json
    return Params(**vars(a)), as_json


def _snapshot(b: Block, out: Path, step: int, runtime: Runtime) -> None:
    """Gather the field; rank 0 writes it and submits its tasks. Collective."""
    field = gather(b)
    if field is None:
        return
    buf = io.BytesIO()
    np.save(buf, field, allow_pickle=False)
    snap = layout.snapshot_path(out, step)
    layout.write_atomic(snap, buf.getvalue())
    runtime.submit("reduce", path=str(snap), out=str(layout.reduce_path(out, snap)))
    runtime.submit("compress", path=str(snap), out=str(layout.compress_path(out, snap)))


def _simulate(b: Block, params: Params, out: Path, runtime: Runtime) -> int:
    """The time loop; returns the number of snapshots taken."""
    snapshots = 0
    for step in range(1, params.steps + 1):
        advance(b, params.compute_scale)
        if params.io_sleep > 0:
            with runtime.phase("io"):
                time.sleep(params.io_sleep)
        if step % params.every == 0:
            with runtime.phase("io"):
                _snapshot(b, out, step, runtime)
            snapshots += 1
    return snapshots


def run_delay_s() -> float:
    """Seconds this process has waited on a run queue for a CPU (/proc/self/schedstat, 0
    where the kernel keeps none): time that other processes held its core."""
    try:
        with open("/proc/self/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def run(params: Params, comm: Any, runtime: Runtime) -> dict[str, Any]:
    """Run the simulation on every rank of ``comm``; rank 0 returns the summary.

    Summary keys: mode, ranks, checksum (16 hex digits of the final field's SHA-256),
    field_sum, snapshots, submitted, start_s, sim_wall_s, sim_cpu_s (rank 0),
    sim_run_delay_s (every rank's wait for a CPU during the steps, summed),
    stop_s (draining or running the tasks), total_wall_s, tasks_cpu_s, params.
    Other ranks return an empty dict.
    """
    rank, out = comm.Get_rank(), Path(params.out).resolve()
    if rank == 0:
        layout.prepare(out)
    comm.Barrier()
    t_total = time.perf_counter()
    runtime.start(run_name=params.run, config=params.config)
    block = make_block(comm, params.nx, params.ny)
    comm.Barrier()
    t_sim, cpu_sim, delay = time.perf_counter(), time.process_time(), run_delay_s()
    snapshots = _simulate(block, params, out, runtime)
    field = gather(block)
    sim_wall, sim_cpu = time.perf_counter() - t_sim, time.process_time() - cpu_sim
    delays = comm.gather(run_delay_s() - delay, root=0)
    t_stop = time.perf_counter()
    runtime.stop()
    stop_s = time.perf_counter() - t_stop
    if field is None:
        return {}
    result = {
        "mode": runtime.mode,
        "ranks": comm.Get_size(),
        "checksum": field_digest(field),
        "field_sum": float(field.sum()),
        "snapshots": snapshots,
        "submitted": runtime.submitted,
        "start_s": t_sim - t_total,
        "sim_wall_s": sim_wall,
        "sim_cpu_s": sim_cpu,
        "sim_run_delay_s": sum(delays),
        "stop_s": stop_s,
        "total_wall_s": time.perf_counter() - t_total,
        "tasks_cpu_s": runtime.tasks_cpu_s,
        "params": asdict(params),
    }
    layout.write_atomic(out / layout.MANIFEST, (json.dumps(result, indent=1) + "\n").encode())
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m odop.demo.heat``; returns the exit status."""
    params, as_json = parse_args(argv)
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    result = run(params, comm, make_runtime(params.mode))
    if result:
        if as_json:
            print(json.dumps(result), flush=True)
        else:
            print(
                f"heat {params.ny}x{params.nx}, {params.steps} steps on {result['ranks']} rank(s), "
                f"mode {result['mode']}: checksum {result['checksum']}, "
                f"{result['snapshots']} snapshots, {result['submitted']} tasks, "
                f"sim {result['sim_wall_s']:.2f} s, total {result['total_wall_s']:.2f} s",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    main()
