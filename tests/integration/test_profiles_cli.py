"""Profiles across runs: after two runs, `odop profiles TASK --json` shows the measured
history and an estimate from it that differs from the declaration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env

pytestmark = pytest.mark.slow

SIM = '''
import time, odop

@odop.task(name="nap", time="60s", memory="1G")
def nap():
    time.sleep(0.2)

if __name__ == "__main__":
    odop.start()
    odop.submit("nap")
    odop.stop()
'''


def test_two_runs_shape_the_estimate(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "sim.py").write_text(SIM)
    for _ in range(2):
        run = subprocess.run([sys.executable, "sim.py"], cwd=tmp_path, env=child_env(),
                             capture_output=True, text=True, timeout=90)
        assert run.returncode == 0, run.stderr
    out = subprocess.run([sys.executable, "-m", "odop", "profiles", "nap", "--json"],
                         env=child_env(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    profile = json.loads(out.stdout)
    assert profile["declared"]["time_s"] == 60.0
    assert profile["history"]["count"] == 2
    estimate = profile["estimate"]
    assert estimate["source"] == "history" and estimate["samples"] == 2
    assert 0.2 <= estimate["duration_s"] < 60.0
    assert estimate["memory_bytes"] < 10**9
