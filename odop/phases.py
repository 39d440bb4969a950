"""Phase marks: the simulation says when its ranks wait, so their cores can be lent.

MPI libraries often spin while a rank waits (a blocked barrier can show 100 % CPU), so
utilisation alone hides idle phases. ``with odop.phase("io"):`` around a wait costs one
non-blocking message at entry and one at exit; while a rank is inside an idle phase
(names in the ``idle_phases`` config key), the cores it is bound to may run tasks, which
are paused, moved or requeued the moment the phase ends.

A phase too short to lend cores (it usually lasts less than ``phase_min_lend_s``, learned
on the rank as the scheduler learns it) sends at most one enter/leave pair per second: a
loop that waits 20 ms per step costs the rank and the scheduler no message per step.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from odop.protocol import MsgType


def _runtime() -> Any:
    from odop.launch.embedded import current

    return current()


def mark(phase: str, active: bool) -> None:
    """Tell the scheduler this rank enters (``active``) or leaves ``phase`` (unless the
    rank's :class:`odop.phasegate.PhaseGate` holds the mark back); never blocks."""
    rt = _runtime()
    if rt is None:
        return
    now = time.monotonic()
    if not (rt.gate.enter(phase, now) if active else rt.gate.leave(phase, now)):
        return
    rt.client.send(MsgType.PHASE, node=rt.node, rank=rt.rank, phase=phase, active=active,
                   cores=sorted(os.sched_getaffinity(0)))


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Mark the enclosed block as phase ``name`` of this rank (e.g. "io", "wait", "gpu")."""
    mark(name, True)
    try:
        yield
    finally:
        mark(name, False)


def checkpoint_dir() -> str | None:
    """Inside a task: the folder where a resumable task keeps its checkpoint across
    preemptions (the same for every attempt of one execution); None outside odop."""
    return os.environ.get("ODOP_CHECKPOINT_DIR")
