"""What a running task knows about itself: ``odop.context()``.

odop runs a task at least once: after a crash (of a node, an agent, a scheduler) the same
execution may run again, with a higher attempt number. A task that names its outputs after
what it computes, writes them to a temporary name and renames them into place, can run
twice without harm; its context tells it which execution and attempt it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskContext:
    """The execution a task is running as, and what it was granted."""

    execution_id: str
    """The execution's id (32 hex characters), the same for every attempt."""
    attempt: int
    """0 for its first run, then 1, 2, ... for each retry or requeue."""
    cores: tuple[int, ...]
    """The cores it is pinned to."""
    gpus: tuple[int, ...]
    """The GPUs it was granted (NVML indices; empty: none)."""
    run_dir: str
    """The run folder."""
    task_dir: str
    """The execution's own folder (its stdout, stderr, scratch files)."""


def context(environ: Mapping[str, str] | None = None) -> TaskContext | None:
    """Inside a task run by odop: its :class:`TaskContext`, from the variables odop sets
    (``ODOP_EXECUTION_ID``, ``ODOP_ATTEMPT``, ``ODOP_CORES``, ``ODOP_GPUS``,
    ``ODOP_RUN_DIR``, ``ODOP_TASK_DIR``); None elsewhere."""
    env = os.environ if environ is None else environ
    execution = env.get("ODOP_EXECUTION_ID")
    if not execution:
        return None
    return TaskContext(execution_id=execution, attempt=int(env.get("ODOP_ATTEMPT") or 0),
                       cores=_ints(env.get("ODOP_CORES")), gpus=_ints(env.get("ODOP_GPUS")),
                       run_dir=env.get("ODOP_RUN_DIR", ""), task_dir=env.get("ODOP_TASK_DIR", ""))


def _ints(text: str | None) -> tuple[int, ...]:
    return tuple(int(part) for part in (text or "").split(",") if part.strip())
