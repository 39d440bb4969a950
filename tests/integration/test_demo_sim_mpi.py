"""The demo simulation under mpiexec: same checksum and outputs on 2 ranks as on 1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from odop.demo.verify import verify_outputs

REPO = Path(__file__).resolve().parents[2]
SMALL = ["--nx", "40", "--ny", "37", "--steps", "12", "--every", "4"]


def _mpiexec() -> str | None:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
pytestmark = [
    pytest.mark.mpi,
    pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found"),
]


def _run(ranks: int, out: Path, *args: str) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, "-m", "odop.demo.heat", "--out", str(out), "--json", *args]
    if ranks > 1:
        assert MPIEXEC is not None
        cmd = [MPIEXEC, "-n", str(ranks), *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, done.stdout  # only rank 0 prints
    return json.loads(lines[0])


def test_two_ranks_match_one_rank_and_verify(tmp_path: Path) -> None:
    one = _run(1, tmp_path / "one", *SMALL, "--mode", "after")
    two = _run(2, tmp_path / "two", *SMALL, "--mode", "after", "--compute-scale", "1")
    assert two["ranks"] == 2 and one["ranks"] == 1
    assert two["checksum"] == one["checksum"] and two["field_sum"] == one["field_sum"]
    assert two["snapshots"] == one["snapshots"] == 3 and two["submitted"] == 6
    result = verify_outputs(tmp_path / "two")
    assert result.passed, result.problems
    for a, b in zip(
        sorted((tmp_path / "one").rglob("snap_*")),
        sorted((tmp_path / "two").rglob("snap_*")),
        strict=True,
    ):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()


def test_two_ranks_with_sweeps_and_io_phase(tmp_path: Path) -> None:
    args = [*SMALL, "--mode", "none", "--compute-scale", "2", "--io-sleep", "0.001"]
    assert _run(2, tmp_path / "b", *args)["checksum"] == _run(1, tmp_path / "a", *args)["checksum"]
