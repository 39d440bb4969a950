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
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from odop.protocol import MsgType


def _runtime() -> Any:
    from odop.launch import embedded

    return getattr(embedded, "_runtime", None)


@dataclass
class PhaseTimes:
    """How long each phase usually lasts, by key: the instances begun and not ended yet,
    and each key's duration smoothed over its instances (seconds; the newest weighs half).
    A rank keys by phase name, the scheduler by (node, rank, phase)."""

    began: dict[Hashable, float] = field(default_factory=dict)
    typical_s: dict[Hashable, float] = field(default_factory=dict)

    def begin(self, key: Hashable, now: float) -> None:
        self.began[key] = now

    def end(self, key: Hashable, now: float) -> None:
        began = self.began.pop(key, None)
        if began is not None:
            last = self.typical_s.get(key)
            lasted = now - began
            self.typical_s[key] = lasted if last is None else 0.5 * last + 0.5 * lasted


@dataclass
class PhaseGate:
    """Which of one rank's phase marks are sent: every mark of a phase that may last long
    enough to lend cores, at most one enter/leave pair per ``every_s`` of the others."""

    min_lend_s: float
    every_s: float = 1.0
    times: PhaseTimes = field(default_factory=PhaseTimes)
    sent_at: dict[str, float] = field(default_factory=dict)
    quiet: set[str] = field(default_factory=set)
    """Phases whose current instance is not being sent."""

    def enter(self, phase: str, now: float) -> bool:
        """A phase begins; True when its mark is to be sent."""
        self.times.begin(phase, now)
        short = self.times.typical_s.get(phase, self.min_lend_s) < self.min_lend_s
        if short and now - self.sent_at.get(phase, -self.every_s) < self.every_s:
            self.quiet.add(phase)
            return False
        self.quiet.discard(phase)
        self.sent_at[phase] = now
        return True

    def leave(self, phase: str, now: float) -> bool:
        """A phase ends; True when its mark is to be sent (its entry was)."""
        self.times.end(phase, now)
        if phase in self.quiet:
            self.quiet.discard(phase)
            return False
        return True


def mark(phase: str, active: bool) -> None:
    """Tell the scheduler this rank enters (``active``) or leaves ``phase`` (unless the
    rank's :class:`PhaseGate` holds the mark back); never blocks."""
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
