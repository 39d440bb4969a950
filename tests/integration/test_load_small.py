"""benchmarks/load.py, small: 500 submissions from 2 client processes reach the database
once each; 100 very short tasks from mpiexec -n 2 all run, none twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import load_benchmark, mpiexec

pytestmark = [pytest.mark.slow, pytest.mark.mpi, pytest.mark.timeout(240),
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]


def test_500_submissions_and_100_tasks_none_lost(tmp_path: Path) -> None:
    result = load_benchmark("load").run_load(tmp_path, submissions=500, clients=2,
                                             n_tasks=100, ranks=2)
    burst, tasks = result["burst"], result["tasks"]
    assert burst["all_acked"] and burst["in_db"] == 500, burst
    assert burst["states"] == {"queued": 500}
    assert burst["states_after_abort"] == {"cancelled": 500}
    assert tasks["states"] == {"done": 100}, tasks
    assert tasks["invented"] == 0
    assert result["lost"] == 0 and result["duplicated"] == 0, result
