"""Counterfactuals for the run report: run immediately, or after the simulation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from odop.energy.accounting import Comparison, ExecutionEnergy
from odop.energy.forecast import Forecast
from odop.energy.planner import J_PER_KWH


def immediate(accounts: Sequence[ExecutionEnergy], signal: Forecast) -> Comparison:
    """The same executions, same joules, each started at its submission time."""
    grams = 0.0
    for a in accounts:
        t0 = a.start if a.submitted_at is None else a.submitted_at
        grams += a.joules / J_PER_KWH * signal.mean_over(t0, t0 + (a.end - a.start))
    sources = "+".join(sorted({a.power_source for a in accounts})) or "none"
    return Comparison("immediate", sum(a.joules for a in accounts), grams, sources,
                      sum(a.gco2 for a in accounts))


def after_simulation(task_wall_s: Sequence[float], task_cores: Sequence[float],
                     cores_per_node: int, nodes: int, node_watts: float, sim_end: float,
                     signal: Forecast, actual_gco2: float, overhead_s: float = 0.0
                     ) -> Comparison:
    """The same tasks on a new allocation of ``nodes`` whole nodes after the simulation.

    Node-seconds = sum(wall x cores) / cores_per_node (perfectly packed: a lower bound)
    plus ``overhead_s`` per node; energy = node-seconds x ``node_watts`` (whole nodes
    are powered and charged); it runs from ``sim_end`` for node-seconds / nodes.
    """
    core_s = float(np.dot(np.asarray(task_wall_s, float), np.asarray(task_cores, float)))
    node_s = core_s / cores_per_node + overhead_s * nodes
    joules = node_s * node_watts
    span = node_s / max(nodes, 1)
    grams = joules / J_PER_KWH * signal.mean_over(sim_end, sim_end + span)
    return Comparison("after-simulation", joules, grams, f"model:{node_watts:g}W/node",
                      actual_gco2)
