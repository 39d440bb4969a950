"""Task declarations: units, specs, the ``@task`` registry, spec folders and triggers.

The names below are imported on first use (:mod:`odop.lazy`): the fork server needs only
``target``, and should not wait for the rest.
"""

from __future__ import annotations

from odop.lazy import exports

__all__, __getattr__ = exports(__name__, {
    "registry": ("clear", "get", "register", "registered", "task"),
    "spec": ("TaskSpec", "check_spec", "parse_spec"),
    "target": ("TargetError", "load_callable"),
    "units": ("parse_cpus", "parse_duration", "parse_memory"),
})
