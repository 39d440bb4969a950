"""The state SchedulerService holds, declared once for the parts it is made of
(ClientRequests, AgentReports, Outcomes), so each part reads as what it uses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import zmq

    from odop.config import Config
    from odop.paths import RunPaths
    from odop.protocol import MsgType
    from odop.scheduler.core import Decider
    from odop.scheduler.energy import EnergyPolicy
    from odop.scheduler.holds import Holds
    from odop.scheduler.predict import IdlePredictor
    from odop.scheduler.preemption import PhaseBook, Preemption
    from odop.scheduler.selection import Pending
    from odop.scheduler.triggers import TriggerSet
    from odop.store.executions import RunStore
    from odop.store.profiles import ProfileStore


class ServiceParts:
    """Attributes and shared methods; SchedulerService sets and defines them."""

    paths: RunPaths
    config: Config
    store: RunStore
    profiles: ProfileStore
    decider: Decider
    sock: zmq.Socket
    missing: dict[str, float]
    cancelling: set[str]
    waiters: list[tuple[bytes, str]]
    agents: dict[str, int]
    invalid: int
    running: bool
    dirty: bool
    triggers: TriggerSet
    energy: EnergyPolicy
    holds: Holds
    started_at: dict[str, float]
    phases: PhaseBook
    preemption: Preemption
    predictors: dict[str, IdlePredictor]
    window: int

    if TYPE_CHECKING:
        def _send(self, ident: bytes, mtype: MsgType, **fields: Any) -> None: ...
        def _queue(self, execution: str, task: str, args: dict[str, Any], origin: str) -> bool: ...
        def _pending(self, row: dict[str, Any]) -> Pending: ...
        def _abort(self, reason: str) -> None: ...
        def sim_gone(self, node: str) -> None: ...
        def _fire_triggers(self, now: float, ready: set[str]) -> None: ...
        def send_command(self, execution: str, mtype: MsgType, **fields: Any) -> None: ...
        def _record_exit(self, row: dict[str, Any], msg: Any) -> None: ...
        def finish(self, row: dict[str, Any], usage: dict[str, Any], ended_at: float) -> None: ...
        def requeue(self, execution: str) -> None: ...
        def held_on(self, node: str) -> list[str]: ...
        def node_of(self, execution: str) -> str | None: ...
