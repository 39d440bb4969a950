"""Samplers: one per resource family, each returning its section of a sample."""

from __future__ import annotations

from odop_obs.samplers.base import Sampler
from odop_obs.samplers.gpu import GpuSampler
from odop_obs.samplers.power import PowerSampler
from odop_obs.samplers.process import ProcessSampler
from odop_obs.samplers.system import SystemSampler

__all__ = ["GpuSampler", "PowerSampler", "ProcessSampler", "Sampler", "SystemSampler"]
