"""odop.energy: grid signals, deferral planning, energy policies and accounting.

Units: seconds, unix seconds, watts, joules, gCO2/kWh, currency/MWh, grams of CO2.

Each public name below is imported from its module on first use (:mod:`odop.lazy`): the
scheduler, which needs settings, signals and the planner, imports no other part.
"""

from __future__ import annotations

from odop.lazy import exports

__all__, __getattr__ = exports(__name__, {
    "accounting": (
        "Comparison", "ExecutionEnergy", "RunTotals", "account_execution", "cpu_share_energy",
        "grams_co2", "interval_energy", "run_totals",
    ),
    "compare": ("after_simulation", "immediate"),
    "errors": ("EnergyConfigError", "EnergyError", "FetchError", "SignalError"),
    "export": ("ExportPlan", "ExportTask", "Site", "render_slurm_script"),
    "forecast": ("Forecast", "SignalPoint"),
    "planner": (
        "BatchPlan", "Decision", "bucket_heuristic", "plan_many", "plan_start",
        "window_costs",
    ),
    "policy": (
        "CarbonLevel", "ConcurrencyScaler", "LevelClassifier", "PriorityThresholds",
    ),
    "powercap": ("CapDecision", "CapTask", "PowerCapController"),
    "settings": ("EnergySettings", "make_provider", "parse_settings"),
    "signals": (
        "ElectricityMaps", "EntsoePrices", "ReplaySignal", "SignalProvider", "SignalStatus",
        "StaticSignal", "UKCarbonIntensity", "WattTime",
    ),
})
