"""benchmarks/warm.py, as docs/engine.md and docs/tasks.md show it: every way runs, and
the warm ways are forked (they spend less CPU than a fresh interpreter's imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


def test_warm_benchmark_runs_every_way() -> None:
    out = subprocess.run([sys.executable, "benchmarks/warm.py", "--json", "--n", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=280, check=True)
    result = json.loads(out.stdout)
    ways = result["ways"]
    assert set(ways) == {"script_fresh", "script_warm", "function_fresh", "function_warm"}
    assert all(w["runs"] == 2 for w in ways.values())
