"""How long phases last, and which of a rank's phase marks are worth sending.

:class:`PhaseTimes` is shared by a rank (keyed by phase name) and the scheduler (keyed by
node, rank and phase); :class:`PhaseGate` is the rank's filter in front of its marks.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass
class PhaseTimes:
    """How long each phase usually lasts, by key: the instances begun and not ended yet,
    and each key's duration smoothed over its instances (seconds; the newest weighs half).
    A rank keys by phase name, the scheduler by (node, rank, phase)."""

    began: dict[Hashable, float] = field(default_factory=dict)
    typical_s: dict[Hashable, float] = field(default_factory=dict)

    def begin(self, key: Hashable, now: float) -> None:
        self.began[key] = now

    def end(self, key: Hashable, now: float) -> None:
        began = self.began.pop(key, None)
        if began is not None:
            last = self.typical_s.get(key)
            lasted = now - began
            self.typical_s[key] = lasted if last is None else 0.5 * last + 0.5 * lasted


@dataclass
class PhaseGate:
    """Which of one rank's phase marks are sent: every mark of a phase that may last long
    enough to lend cores, at most one enter/leave pair per ``every_s`` of the others."""

    min_lend_s: float
    every_s: float = 1.0
    times: PhaseTimes = field(default_factory=PhaseTimes)
    sent_at: dict[str, float] = field(default_factory=dict)
    quiet: set[str] = field(default_factory=set)
    """Phases whose current instance is not being sent."""

    def enter(self, phase: str, now: float) -> bool:
        """A phase begins; True when its mark is to be sent."""
        self.times.begin(phase, now)
        short = self.times.typical_s.get(phase, self.min_lend_s) < self.min_lend_s
        if short and now - self.sent_at.get(phase, -self.every_s) < self.every_s:
            self.quiet.add(phase)
            return False
        self.quiet.discard(phase)
        self.sent_at[phase] = now
        return True

    def leave(self, phase: str, now: float) -> bool:
        """A phase ends; True when its mark is to be sent (its entry was)."""
        self.times.end(phase, now)
        if phase in self.quiet:
            self.quiet.discard(phase)
            return False
        return True
