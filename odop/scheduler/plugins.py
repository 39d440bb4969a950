"""The registry of selection and placement algorithms, chosen by name in the config."""

from __future__ import annotations

from odop.errors import ConfigError
from odop.scheduler.placement import PLACEMENTS, Placement
from odop.scheduler.selection import SELECTIONS, Selection


def available(kind: str) -> list[str]:
    """Names of the algorithms of ``kind`` ("selection" or "placement")."""
    return sorted(SELECTIONS if kind == "selection" else PLACEMENTS)


def make_selection(name: str) -> Selection:
    if name not in SELECTIONS:
        raise ConfigError(f"selection {name!r} is unknown; allowed: {', '.join(SELECTIONS)}")
    return SELECTIONS[name]()


def make_placement(name: str) -> Placement:
    if name not in PLACEMENTS:
        raise ConfigError(f"placement {name!r} is unknown; allowed: {', '.join(PLACEMENTS)}")
    return PLACEMENTS[name]()
