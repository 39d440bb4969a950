"""odop's own processes start beside the ranks' cores, from their first instruction."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from odop.engine.spawn import all_cpus, cores_beside, thread_pinned
from odop.launch.daemons import spawn_daemon
from odop.paths import RunPaths

CPUS = sorted(all_cpus())
needs_two = pytest.mark.skipif(len(CPUS) < 2, reason="needs two CPUs")

PRINT_MASK = "import os; print(sorted(os.sched_getaffinity(0)))"


@needs_two
def test_a_child_started_inside_thread_pinned_starts_on_those_cores() -> None:
    before = os.sched_getaffinity(0)
    with thread_pinned({CPUS[-1]}):
        child = subprocess.run([sys.executable, "-c", PRINT_MASK], capture_output=True,
                               text=True, check=True)
    assert child.stdout.strip() == str([CPUS[-1]])
    assert os.sched_getaffinity(0) == before


@needs_two
def test_thread_pinned_changes_only_the_calling_thread() -> None:
    before = os.sched_getaffinity(0)
    entered, leave = threading.Event(), threading.Event()

    def pinned() -> None:
        with thread_pinned({CPUS[0]}):
            entered.set()
            leave.wait(10)

    worker = threading.Thread(target=pinned)
    worker.start()
    assert entered.wait(10)
    during = os.sched_getaffinity(0)
    leave.set()
    worker.join(10)
    assert during == before


@needs_two
def test_cores_beside_leaves_out_bound_ranks_only() -> None:
    every = set(CPUS)
    assert cores_beside([{CPUS[0]}]) == every - {CPUS[0]}
    assert cores_beside([every]) == every  # an unbound rank binds nothing
    assert cores_beside([]) == every
    assert cores_beside([{c} for c in CPUS]) == every  # none spare: every core


@needs_two
def test_daemons_start_beside_the_ranks_cores(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "run")
    paths.create()
    # an unknown role exits at argument parsing, before odop could move itself: the mask
    # read here is the one the process was started with
    proc = spawn_daemon("no-such-role", [], paths, "n0", [{CPUS[0]}])
    try:
        with open(f"/proc/{proc.pid}/status") as fh:
            line = next(x for x in fh if x.startswith("Cpus_allowed_list"))
    finally:
        proc.wait(30)
    assert _expand(line.split(":")[1].strip()) == set(CPUS[1:])


def _expand(ranges: str) -> set[int]:
    out: set[int] = set()
    for part in ranges.split(","):
        lo, _, hi = part.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out
