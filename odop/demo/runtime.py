"""How the demo simulation hands its tasks off: one small adapter per mode.

- ``none``:  simulation only; submitted tasks are dropped (and not counted);
- ``after``: tasks are recorded and run one by one in this process by :meth:`stop`,
  after the simulation (the "post-process afterwards" baseline of the benchmarks);
- ``odop``:  odop's public API (``odop.start/submit/phase/stop``), imported lazily.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

MODES = ("none", "after", "odop")


class Runtime(ABC):
    """Contract: every rank calls start, then any number of submit/phase, then stop."""

    mode: str = ""

    def __init__(self) -> None:
        self.submitted = 0
        self.tasks_wall_s = 0.0
        self.tasks_cpu_s = 0.0

    @abstractmethod
    def start(self, run_name: str | None = None, config: str | None = None) -> None:
        """Begin the run (collective under MPI)."""

    @abstractmethod
    def submit(self, name: str, **kwargs: Any) -> str:
        """Queue task ``name`` with keyword arguments; returns an execution id."""

    def phase(self, name: str) -> AbstractContextManager[None]:
        """Mark a phase of the simulation (e.g. ``"io"``); a no-op unless overridden."""
        return contextlib.nullcontext()

    @abstractmethod
    def stop(self) -> None:
        """Finish every queued task and end the run (collective under MPI)."""


class NoneRuntime(Runtime):
    """Simulation only: tasks are dropped."""

    mode = "none"

    def start(self, run_name: str | None = None, config: str | None = None) -> None:
        pass

    def submit(self, name: str, **kwargs: Any) -> str:
        return ""

    def stop(self) -> None:
        pass


class AfterRuntime(Runtime):
    """Records tasks and runs them sequentially in this process at :meth:`stop`."""

    mode = "after"

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[tuple[str, dict[str, Any]]] = []

    def start(self, run_name: str | None = None, config: str | None = None) -> None:
        pass

    def submit(self, name: str, **kwargs: Any) -> str:
        from odop.demo.tasks import TASKS

        if name not in TASKS:
            raise LookupError(f"unknown demo task {name!r}; known: {', '.join(sorted(TASKS))}")
        self.queue.append((name, kwargs))
        self.submitted += 1
        return f"after-{self.submitted}"

    def stop(self) -> None:
        from odop.demo.tasks import TASKS

        wall, cpu = time.perf_counter(), time.process_time()
        for name, kwargs in self.queue:
            TASKS[name](**kwargs)
        self.queue.clear()
        self.tasks_wall_s += time.perf_counter() - wall
        self.tasks_cpu_s += time.process_time() - cpu


class OdopRuntime(Runtime):
    """odop's public API; importing this class does not import odop."""

    mode = "odop"

    def __init__(self) -> None:
        super().__init__()
        self._odop: Any = None

    def start(self, run_name: str | None = None, config: str | None = None) -> None:
        import odop
        import odop.demo.tasks  # noqa: F401  registers the demo's @odop.task functions

        self._odop = odop
        odop.start(run_name=run_name, task_folder=None, config=config)

    def submit(self, name: str, **kwargs: Any) -> str:
        exec_id = self._odop.submit(name, **kwargs)
        self.submitted += 1
        return str(exec_id)

    def phase(self, name: str) -> AbstractContextManager[None]:
        marker = getattr(self._odop, "phase", None)
        return marker(name) if marker is not None else contextlib.nullcontext()

    def stop(self) -> None:
        wall = time.perf_counter()
        self._odop.stop()
        self.tasks_wall_s += time.perf_counter() - wall


def make_runtime(mode: str) -> Runtime:
    """The adapter for ``mode`` (one of :data:`MODES`)."""
    kinds: dict[str, type[Runtime]] = {
        "none": NoneRuntime,
        "after": AfterRuntime,
        "odop": OdopRuntime,
    }
    if mode not in kinds:
        raise ValueError(f"demo mode {mode!r} is not known; allowed: {', '.join(MODES)}")
    return kinds[mode]()
