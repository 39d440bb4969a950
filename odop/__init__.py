"""odop: run post-processing tasks on the cores a simulation leaves idle, while it runs.

The public face::

    @odop.task(name="reduce", time="30s", cpus=1, memory="256M")
    def reduce(path: str) -> None: ...

    odop.start()                       # every rank
    odop.submit("reduce", path=p)      # any rank; returns the execution id at once
    odop.stop()                        # every rank; drains the queue, then shuts down

    odop.context()                     # inside a task: its execution id, attempt, cores...
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from odop.errors import OdopError, SpecError, SpecErrors, UnknownTaskError
from odop.lazy import exports

if TYPE_CHECKING:  # what type checkers and editors see
    from odop.phases import checkpoint_dir as checkpoint_dir
    from odop.phases import phase as phase
    from odop.taskenv import TaskContext as TaskContext
    from odop.taskenv import context as context
    from odop.tasks.registry import task as task

# imported on first use: odop's daemons import this package but need neither module
_LAZY, __getattr__ = exports(__name__, {"tasks.registry": ("task",),
                                        "phases": ("checkpoint_dir", "phase"),
                                        "taskenv": ("TaskContext", "context")})

__version__ = "0.1.0"
__all__ = ["OdopError", "SpecError", "SpecErrors", "UnknownTaskError", "start", "stop",
           "submit", *_LAZY]


def start(run_name: str | None = None, task_folder: str | None = None, config: Any = None,
          comm: Any = None) -> Any:
    """Bring odop up beside the simulation (collective over MPI ranks); returns the run."""
    from odop.launch.embedded import start as _start

    return _start(run_name, task_folder, config, comm)


def submit(task_name: str, /, **kwargs: Any) -> str:
    """Queue one execution of a declared task; returns its id without waiting."""
    from odop.launch.embedded import submit as _submit

    return _submit(task_name, **kwargs)


def stop(timeout_s: float | None = None) -> dict[str, Any]:
    """Let queued tasks finish on every core, then shut odop down (collective)."""
    from odop.launch.embedded import stop as _stop

    return _stop(timeout_s)
