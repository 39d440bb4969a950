"""How a task ended: the ``Exit`` record and the reason text for each exit status."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from odop.engine.process import TaskProcess
from odop.engine.worker import EXIT_MEMORY, EXIT_SETUP

OOM_CGROUP = "out of memory (cgroup)"


@dataclass(frozen=True)
class Exit:
    """How a task ended and what it used (seconds, bytes)."""

    execution: str
    exit_code: int | None
    signal: int | None
    reason: str
    cpu_s: float
    max_rss_bytes: int
    wall_s: float


def exit_record(proc: TaskProcess, status: int, cpu_s: float, max_rss_bytes: int,
                oom: bool = False) -> Exit:
    """The record of ``proc`` ended with wait ``status``; ``oom``: its cgroup saw an OOM kill."""
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else None
    reason = OOM_CGROUP if oom and not proc.reason else (proc.reason or reason_of(code))
    return Exit(proc.execution, code if code >= 0 else None, sig, reason, cpu_s=cpu_s,
                max_rss_bytes=max_rss_bytes, wall_s=time.monotonic() - proc.started)


def reason_of(code: int) -> str:
    """Plain words for an exit code (negative: killed by that signal)."""
    if code == 0:
        return "ok"
    if code == EXIT_MEMORY:
        return "out of memory (exceeded its memory bound)"
    if code == EXIT_SETUP:
        return "could not load the task (see its stderr)"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"
