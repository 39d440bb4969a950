"""odop.energy: grid signals, deferral planning, energy policies and accounting.

Units: seconds, unix seconds, watts, joules, gCO2/kWh, currency/MWh, grams of CO2.
"""

from __future__ import annotations

from odop.energy.accounting import (
    Comparison,
    ExecutionEnergy,
    RunTotals,
    account_execution,
    cpu_share_energy,
    grams_co2,
    interval_energy,
    run_totals,
)
from odop.energy.capacity import CapacityPlanner, plan_with_capacity
from odop.energy.compare import after_simulation, immediate
from odop.energy.errors import EnergyConfigError, EnergyError, FetchError, SignalError
from odop.energy.export import ExportPlan, ExportTask, Site, render_slurm_script
from odop.energy.forecast import Forecast, SignalPoint
from odop.energy.planner import (
    BatchPlan,
    Decision,
    DeferralPlan,
    bucket_heuristic,
    plan_many,
    plan_start,
    window_costs,
)
from odop.energy.policy import (
    CarbonLevel,
    ConcurrencyScaler,
    ElasticAdvisor,
    LevelClassifier,
    PriorityThresholds,
)
from odop.energy.powercap import CapDecision, CapTask, PowerCapController
from odop.energy.settings import EnergySettings, make_provider, parse_settings
from odop.energy.signals import (
    ElectricityMaps,
    EntsoePrices,
    ReplaySignal,
    SignalProvider,
    SignalStatus,
    StaticSignal,
    UKCarbonIntensity,
    WattTime,
)

__all__ = [
    "BatchPlan", "CapDecision", "CapTask", "CapacityPlanner", "CarbonLevel", "Comparison",
    "ConcurrencyScaler", "Decision", "DeferralPlan", "ElasticAdvisor", "ElectricityMaps",
    "EnergyConfigError", "EnergyError", "EnergySettings", "EntsoePrices", "ExecutionEnergy",
    "ExportPlan", "ExportTask", "FetchError", "Forecast", "LevelClassifier", "PowerCapController",
    "PriorityThresholds", "ReplaySignal", "RunTotals", "SignalError", "SignalPoint",
    "SignalProvider", "SignalStatus", "Site", "StaticSignal", "UKCarbonIntensity", "WattTime",
    "account_execution", "after_simulation", "bucket_heuristic", "cpu_share_energy", "grams_co2",
    "immediate", "interval_energy", "make_provider", "parse_settings", "plan_many", "plan_start",
    "plan_with_capacity", "render_slurm_script", "run_totals", "window_costs",
]
