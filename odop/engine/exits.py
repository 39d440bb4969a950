"""How a task ended: the ``Exit`` record and the reason text for each exit status."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from odop.engine.process import TaskProcess
from odop.engine.worker import EXIT_MEMORY, EXIT_SETUP


@dataclass(frozen=True)
class Exit:
    """How a task ended and what it used (seconds, bytes); ``output_cut_bytes``: bytes of
    its stdout and stderr dropped to keep them within their bound."""

    execution: str
    exit_code: int | None
    signal: int | None
    reason: str
    cpu_s: float
    max_rss_bytes: int
    wall_s: float
    output_cut_bytes: int = 0


def exit_record(proc: TaskProcess, status: int, cpu_s: float, max_rss_bytes: int,
                oom: bool = False, output_cut_bytes: int = 0) -> Exit:
    """The record of ``proc`` ended with wait ``status``; ``oom``: its cgroup saw an OOM kill."""
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else None
    if proc.reason:
        reason = proc.reason
    elif (oom and code != 0) or (code == EXIT_MEMORY and proc.memory_max):
        reason = memory_reason(proc)
    else:
        reason = reason_of(code)
    return Exit(proc.execution, code if code >= 0 else None, sig, reason, cpu_s=cpu_s,
                max_rss_bytes=max_rss_bytes, wall_s=time.monotonic() - proc.started,
                output_cut_bytes=output_cut_bytes)


def memory_reason(proc: TaskProcess, held: int | None = None) -> str:
    """Why a task that outgrew its memory maximum ended: what it held (bytes, when
    sampled), its maximum, and how that was enforced."""
    limit = _mb(proc.memory_max or 0)
    if held is not None:
        return f"out of memory: held {_mb(held)}, over its max of {limit} ({proc.bound})"
    if proc.bound.startswith("RLIMIT"):
        return f"out of memory: an allocation failed at its limit (max {limit}; {proc.bound})"
    return f"out of memory: reached its max of {limit} ({proc.bound})"


def _mb(nbytes: float) -> str:
    return f"{nbytes / 1e6:.1f} MB"


def reason_of(code: int) -> str:
    """Plain words for an exit code (negative: killed by that signal)."""
    if code == 0:
        return "ok"
    if code == EXIT_MEMORY:
        return "out of memory (MemoryError)"
    if code == EXIT_SETUP:
        return "could not load the task (see its stderr)"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"
