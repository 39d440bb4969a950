"""Task declarations: units, specs, the ``@task`` registry, spec folders and triggers."""

from __future__ import annotations

from odop.tasks.registry import clear, get, register, registered, task
from odop.tasks.spec import TaskSpec, check_spec, parse_spec
from odop.tasks.target import TargetError, load_callable
from odop.tasks.units import parse_cpus, parse_duration, parse_memory

__all__ = [
    "TargetError", "TaskSpec", "check_spec", "clear", "get", "load_callable", "parse_cpus",
    "parse_duration", "parse_memory", "parse_spec", "register", "registered", "task",
]
