"""odop_obs: the node observer of odop (system, processes, GPU, power).

Standalone: imports nothing from ``odop``. Run it inside the node agent
(``Observer.standard(...).start()``) or alone (``python -m odop_obs``).
"""

from __future__ import annotations

from odop_obs.arrays import load_arrays
from odop_obs.errors import ObsConfigError, ObsError, SampleError, UnknownProcessError
from odop_obs.observer import Observer, Sink
from odop_obs.publisher import Publisher
from odop_obs.reader import read_samples
from odop_obs.recorder import Recorder
from odop_obs.samplers import GpuSampler, PowerSampler, ProcessSampler, Sampler, SystemSampler
from odop_obs.schema import SCHEMA_VERSION, TOPIC_PREFIX, topic_for, validate_sample
from odop_obs.subscriber import Subscriber

__all__ = [
    "SCHEMA_VERSION",
    "TOPIC_PREFIX",
    "GpuSampler",
    "ObsConfigError",
    "ObsError",
    "Observer",
    "PowerSampler",
    "ProcessSampler",
    "Publisher",
    "Recorder",
    "SampleError",
    "Sampler",
    "Sink",
    "Subscriber",
    "SystemSampler",
    "UnknownProcessError",
    "load_arrays",
    "read_samples",
    "topic_for",
    "validate_sample",
]
