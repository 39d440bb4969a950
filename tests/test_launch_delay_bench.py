"""benchmarks/launch_delay.py, as docs/benchmarks.md shows it: both commands run and the
wrapped one's program really starts (its first line is stamped)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


def test_launch_delay_benchmark_runs() -> None:
    out = subprocess.run([sys.executable, "benchmarks/launch_delay.py", "--json", "--n", "1"],
                         cwd=REPO, capture_output=True, text=True, timeout=280, check=True)
    result = json.loads(out.stdout)
    assert result["pairs"] == 1
    assert 0 < result["plain_ms_p50"] < result["wrapped_ms_p50"]
    assert result["odop_run_help_ms"] > 0 and result["budget_ms"] == 50.0
