"""The engine's config keys: ``memory_bound`` and ``output_max_bytes`` (their effects on
real runs: tests/test_engine_memory.py, tests/test_engine_output.py and
tests/integration/test_engine_bounds_run.py)."""

from __future__ import annotations

import pytest

from odop.config import Config, load_config
from odop.errors import ConfigError


def test_defaults() -> None:
    assert Config().memory_bound == "auto" and Config().output_max_bytes == 10 * 2**20


def test_values_are_checked() -> None:
    cfg = load_config({"memory_bound": "sample", "output_max_bytes": 2**20})
    assert (cfg.memory_bound, cfg.output_max_bytes) == ("sample", 2**20)
    with pytest.raises(ConfigError, match="'memory_bound' = 'cgroup' is unknown; allowed: "
                                          "auto, sample, rlimit"):
        load_config({"memory_bound": "cgroup"})
    for bad in (0, -1, 1.5, "10MiB", True):
        with pytest.raises(ConfigError, match="'output_max_bytes' = .* must be a positive "
                                              "whole number"):
            load_config({"output_max_bytes": bad})
