"""``EveryTrigger``: a period in wall time (``{"every": "30s"}``).

Fires at the first poll, then every ``period_s`` seconds, keeping its phase: a poll
that comes late fires once (missed periods are not caught up). The last firing time is
persisted, so a restart does not fire again before the period is over.
Submissions: ``{}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from odop.plugins import TRIGGERS
from odop.tasks.triggers.base import Trigger, TriggerState
from odop.tasks.units import duration_field

__all__ = ["EveryTrigger"]


@TRIGGERS.register
class EveryTrigger(Trigger):
    """Submits ``{}`` once per ``period_s`` seconds of wall time."""

    kind = "every"
    options = frozenset({"period_s"})
    form = "every (duration)"

    @classmethod
    def normalise(cls, value: Mapping[str, Any], task: str) -> dict[str, Any]:
        raw = value.get("every", value.get("period_s"))
        return {"kind": "every",
                "period_s": duration_field(task, "trigger.every", raw, positive=True)}

    @classmethod
    def build(cls, trigger: Mapping[str, Any], *, key: str, state: TriggerState,
              **common: Any) -> EveryTrigger:
        return cls(key, state, trigger["period_s"], auto_commit=common.get("auto_commit", True))

    def __init__(self, key: str, state: TriggerState, period_s: float, *,
                 auto_commit: bool = True) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s = {period_s!r} must be > 0 seconds")
        super().__init__(key, state, auto_commit=auto_commit)
        self.period_s = float(period_s)
        self._key = f"{key}/every"
        self.last: float | None = state.get(self._key)

    def next_due(self, now: float) -> float | None:
        return now if self.last is None else self.last + self.period_s

    def _poll(self, now: float) -> list[dict[str, Any]]:
        if self.last is not None:
            if now < self.last + self.period_s:
                return []
            periods = math.floor((now - self.last) / self.period_s)
            self.last += periods * self.period_s
        else:
            self.last = now
        self._stage(self._key, self.last)
        return [{}]
