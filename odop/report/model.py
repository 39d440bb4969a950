"""A run's report before it is rendered: its numbers, energy and figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from odop.energy.accounting import Comparison, ExecutionEnergy
from odop.report.data import RunData
from odop.report.energy import NodeEnergy


@dataclass
class Report:
    """A run's report content before rendering; ``figures`` maps a key to its PNG path."""

    data: RunData
    headline: dict[str, Any]
    task_stats: list[dict[str, Any]]
    energies: dict[str, ExecutionEnergy]
    nodes: dict[str, NodeEnergy]
    after: Comparison | None = None
    figures: dict[str, Path] = field(default_factory=dict)
    missing_figures: list[str] = field(default_factory=list)
    """Files of the figures the run has data for that were not drawn: matplotlib is
    missing (``pip install 'odop[report]'``)."""
