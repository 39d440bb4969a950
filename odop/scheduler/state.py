"""The run's mutable bookkeeping beside the decider, in one place.

The decider holds the queue and the grants; :class:`RunState` holds what the service's
parts share about the run and its executions besides: whether the loop goes on, whether
a cycle is due, who waits for the drain, which agents serve, which executions an agent
stopped reporting, which are being cancelled, and when each started.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunState:
    """Shared by the service, its message handlers and the execution lifecycle."""

    running: bool = True
    """The service loop goes on; False once drained, aborted or stopped."""
    dirty: bool = True
    """A scheduling cycle is due (something changed)."""
    wrapped: bool = False
    """``odop run`` owns the ranks: their end is its word (SIM_END), never an abort."""
    launcher_gone: bool = False
    """In wrapped mode, an agent saw the launcher exit (its word is awaited)."""
    invalid: int = 0
    """Messages refused since the start."""
    waiters: list[tuple[bytes, str]] = field(default_factory=list)
    """(client route, message id) of each SIM_END to answer once drained."""
    agents: dict[str, int] = field(default_factory=dict)
    """node -> pid of its agent, for the components table."""
    missing: dict[str, float] = field(default_factory=dict)
    """execution -> since when (monotonic s) its agent has not reported it running."""
    cancelling: set[str] = field(default_factory=set)
    """Executions told to stop because a user cancelled them."""
    started_at: dict[str, float] = field(default_factory=dict)
    """execution -> when its agent started it (unix s)."""

    def forget(self, execution: str) -> None:
        """Drop what is known of an execution that ended or left its node."""
        self.missing.pop(execution, None)
        self.started_at.pop(execution, None)
