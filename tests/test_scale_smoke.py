"""benchmarks/scale.py: a tiny real run (scheduler process, simulated nodes over CURVE)
gives the row the issue asks for, with nothing dropped or invalid and one scheduler
connection per node (the ranks' submissions relayed by their agents); bad options are
refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env

REPO = Path(__file__).resolve().parent.parent
SCALE = REPO / "benchmarks" / "scale.py"
FIELDS = {"nodes", "scheduler_cpu_pct", "submit_to_start_ms_p50", "submit_to_start_ms_p99",
          "rss_mib", "sqlite_tx_per_s", "dropped", "invalid"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_small_run_reports_every_field(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(SCALE), "--json", "--nodes", "2,3", "--rate", "20",
                          "--seconds", "2", "--warmup", "1", "--drain", "2"],
                         capture_output=True, text=True, timeout=170,
                         env=child_env(ODOP_HOME=str(tmp_path)))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [r["nodes"] for r in result["rows"]] == [2, 3]
    for row in result["rows"]:
        assert row.keys() >= FIELDS, row
        assert row["dropped"] == 0 and row["invalid"] == 0, row
        assert row["starts_measured"] > 0 and row["sqlite_tx_per_s"] > 0, row
        assert row["scheduler_connections"] == row["nodes"] + 1, row  # agents (relaying), us


def test_bad_node_counts_are_refused() -> None:
    out = subprocess.run([sys.executable, str(SCALE), "--nodes", "16,many"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--nodes '16,many'" in out.stderr, out.stderr
