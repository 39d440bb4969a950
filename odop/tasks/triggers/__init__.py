"""Triggers: what submits a task without an explicit ``odop.submit`` call."""

from __future__ import annotations

from odop.tasks.triggers.spec import FILE_EVENTS, TRIGGER_KINDS, normalize_trigger

__all__ = ["FILE_EVENTS", "TRIGGER_KINDS", "normalize_trigger"]
