"""A stand-in ``pynvml`` for the odop processes a test starts: the GPUs described in
``$ODOP_FAKE_NVML`` (a JSON list of :class:`odop_obs.fakes.FakeGpu` fields), served by
:class:`odop_obs.fakes.FakeNvml`. Put this folder first on PYTHONPATH to use it."""

from __future__ import annotations

import json
import os
from typing import Any

from odop_obs.fakes import FakeGpu, FakeNvml, NVMLError

_nvml = FakeNvml([FakeGpu(**{**g, "procs": [tuple(p) for p in g.get("procs", [])]})
                  for g in json.loads(os.environ.get("ODOP_FAKE_NVML", "[]"))])
__all__ = ["NVMLError"]


def __getattr__(name: str) -> Any:
    return getattr(_nvml, name)
