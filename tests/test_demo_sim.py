"""The demo simulation (odop.demo): solver, tasks, verifier, runtimes, CLI on 1 rank."""

from __future__ import annotations

import io
import json
import lzma
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from odop.demo import layout
from odop.demo.heat import parse_args, run_delay_s
from odop.demo.runtime import AfterRuntime, NoneRuntime, make_runtime
from odop.demo.solver import ALPHA, PAGE, initial_rows, page_aligned, row_split, stencil
from odop.demo.tasks import compress, field_digest, reduce, snapshot_stats, stats_json
from odop.demo.verify import verify_outputs

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--nx", "40", "--ny", "37", "--steps", "12", "--every", "4"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def run_heat(out: Path, *args: str) -> dict:
    """Run the demo on one rank (plain python) and return its JSON line."""
    cmd = [sys.executable, "-m", "odop.demo.heat", "--out", str(out), "--json", *args]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def reference_checksum(nx: int, ny: int, steps: int, sweeps: int = 1) -> str:
    """The final field computed on the whole grid at once, without MPI."""
    u = initial_rows(0, ny, nx, ny)
    v = u.copy()
    a = ALPHA / sweeps
    for _ in range(steps * sweeps):
        c = u[1:-1, 1:-1]
        v[1:-1, 1:-1] = c + a * (u[:-2, 1:-1] + u[2:, 1:-1] + u[1:-1, :-2] + u[1:-1, 2:] - 4.0 * c)
        u, v = v, u
    return field_digest(u)


def write_snapshot(out: Path, step: int, field: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, field)
    snap = layout.snapshot_path(out, step)
    layout.write_atomic(snap, buf.getvalue())
    return snap


def run_tasks(out: Path, snap: Path) -> None:
    reduce(str(snap), str(layout.reduce_path(out, snap)))
    compress(str(snap), str(layout.compress_path(out, snap)))


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    """Two snapshots with both task outputs each, written in-process."""
    for step in (5, 10):
        field = initial_rows(0, 30, 20, 30) * step
        run_tasks(tmp_path, write_snapshot(tmp_path, step, field))
    return tmp_path


def test_row_split_covers_every_row_once() -> None:
    bounds = row_split(37, 4)
    assert bounds[0][0] == 0 and bounds[-1][1] == 37
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert {r1 - r0 for r0, r1 in bounds} == {9, 10}
    with pytest.raises(ValueError, match="ny=3"):
        row_split(3, 4)


def test_initial_field_is_the_same_whatever_the_split() -> None:
    whole = initial_rows(0, 37, 40, 37)
    parts = np.vstack([initial_rows(r0, r1, 40, 37) for r0, r1 in row_split(37, 3)])
    assert whole.tobytes() == parts.tobytes()
    assert (whole[0] == 1.0).all() and (whole[-1] == 0.0).all() and (whole[:, 0] == 0.0)[1:].all()


def test_stencil_matches_the_2d_formula_and_keeps_the_edge_columns() -> None:
    u, v = page_aligned(9, 7), page_aligned(9, 7)
    assert u.ctypes.data % PAGE == 0 and v.ctypes.data % PAGE == 0
    u[:] = np.random.default_rng(1).random((9, 7))
    stencil(u, v, 2, 7, 0.1)
    c = u[2:7, 1:-1]
    want = c + 0.1 * (u[1:6, 1:-1] + u[3:8, 1:-1] + u[2:7, :-2] + u[2:7, 2:] - 4.0 * c)
    assert v[2:7, 1:-1].tobytes() == want.tobytes()
    assert (v[2:7, 0] == u[2:7, 0]).all() and (v[2:7, -1] == u[2:7, -1]).all()
    assert not v[:2].any() and not v[7:].any()
    with pytest.raises(ValueError, match="contiguous"):
        stencil(u[:, ::2], v[:, ::2], 2, 7, 0.1)


def test_checksum_is_deterministic_and_matches_whole_grid_reference(tmp_path: Path) -> None:
    first = run_heat(tmp_path / "a", *SMALL, "--mode", "none")
    second = run_heat(tmp_path / "b", *SMALL, "--mode", "none")
    assert first["checksum"] == second["checksum"] == reference_checksum(40, 37, 12)
    assert first["field_sum"] == second["field_sum"]
    assert first["submitted"] == 0 and first["snapshots"] == 3
    scaled = run_heat(tmp_path / "c", *SMALL, "--mode", "none", "--compute-scale", "2")
    assert scaled["checksum"] == reference_checksum(40, 37, 12, sweeps=2)


def test_after_mode_writes_outputs_that_verify(tmp_path: Path) -> None:
    result = run_heat(tmp_path, *SMALL, "--mode", "after", "--io-sleep", "0.001")
    assert result["mode"] == "after" and result["snapshots"] == 3 and result["submitted"] == 6
    assert {"checksum", "sim_wall_s", "snapshots", "submitted", "mode"} <= result.keys()
    assert result["sim_run_delay_s"] >= 0.0
    check = verify_outputs(tmp_path)
    assert check.passed, check.problems
    assert (check.snapshots, check.expected, check.ok) == (3, 6, 6)
    manifest = json.loads((tmp_path / layout.MANIFEST).read_text())
    assert manifest["checksum"] == result["checksum"]


def test_rerun_clears_stale_outputs_only(tmp_path: Path) -> None:
    run_heat(tmp_path, *SMALL, "--mode", "after")
    keep = tmp_path / "snapshots" / "notes.txt"
    keep.write_text("mine")
    run_heat(tmp_path, *SMALL, "--every", "6", "--mode", "none")
    assert [p.name for p in layout.list_snapshots(tmp_path)] == [
        "snap_000006.npy",
        "snap_000012.npy",
    ]
    assert not list((tmp_path / layout.REDUCE).iterdir()) and keep.read_text() == "mine"


def test_reduce_and_compress_outputs(outputs: Path) -> None:
    snap = layout.snapshot_path(outputs, 5)
    stats = json.loads(layout.reduce_path(outputs, snap).read_text())
    field = np.load(snap)
    assert stats == json.loads(stats_json(snapshot_stats(field)))
    assert stats["max"] == float(field.max()) and stats["shape"] == [30, 20]
    assert len(stats["down2_checksum"]) == 16 and len(stats["smoothed_std"]) >= 5
    packed = layout.compress_path(outputs, snap).read_bytes()
    assert lzma.decompress(packed) == snap.read_bytes()


def test_verify_passes_on_good_outputs(outputs: Path) -> None:
    result = verify_outputs(outputs)
    assert result.passed and (result.snapshots, result.expected, result.ok) == (2, 4, 4)


def test_verify_names_missing_and_wrong_outputs(outputs: Path) -> None:
    snap = layout.snapshot_path(outputs, 10)
    layout.compress_path(outputs, snap).unlink()
    bad = layout.reduce_path(outputs, layout.snapshot_path(outputs, 5))
    bad.write_text(bad.read_text().replace('"min"', '"minimum"'))
    result = verify_outputs(outputs)
    assert not result.passed and (result.expected, result.ok) == (4, 2)
    assert any("missing compress" in p and "snap_000010.npy.xz" in p for p in result.problems)
    assert any("wrong reduce" in p and "snap_000005.json" in p for p in result.problems)


def test_verify_detects_corrupt_and_mismatched_compress(outputs: Path) -> None:
    five, ten = (layout.compress_path(outputs, layout.snapshot_path(outputs, s)) for s in (5, 10))
    five.write_bytes(five.read_bytes()[:-20])
    ten.write_bytes(lzma.compress(b"not the snapshot"))
    problems = verify_outputs(outputs).problems
    assert any("corrupt compress" in p and five.name in p for p in problems)
    assert any("wrong compress" in p and ten.name in p for p in problems)


def test_verify_empty_folder_fails(tmp_path: Path) -> None:
    result = verify_outputs(tmp_path)
    assert not result.passed and "no snapshots" in result.problems[0]


def test_after_runtime_runs_tasks_at_stop(tmp_path: Path) -> None:
    snap = write_snapshot(tmp_path, 1, initial_rows(0, 10, 10, 10))
    rt = AfterRuntime()
    rt.start()
    rt.submit("reduce", path=str(snap), out=str(layout.reduce_path(tmp_path, snap)))
    rt.submit("compress", path=str(snap), out=str(layout.compress_path(tmp_path, snap)))
    assert rt.submitted == 2 and not layout.reduce_path(tmp_path, snap).exists()
    rt.stop()
    assert verify_outputs(tmp_path).passed and not rt.queue
    with pytest.raises(LookupError, match="render"):
        rt.submit("render", path="x")


def test_none_runtime_and_unknown_mode() -> None:
    rt = NoneRuntime()
    assert rt.submit("reduce", path="x", out="y") == "" and rt.submitted == 0
    with rt.phase("io"):
        pass
    assert make_runtime("after").mode == "after"
    with pytest.raises(ValueError, match="'later'"):
        make_runtime("later")


def test_cli_arguments(tmp_path: Path) -> None:
    params, as_json = parse_args(["--out", str(tmp_path), "--compute-scale", "3", "--json"])
    assert as_json and params.compute_scale == 3 and params.nx == 512 and params.mode == "after"
    for bad in (["--steps", "0"], ["--io-sleep", "-1"], ["--mode", "later"]):
        with pytest.raises(SystemExit):
            parse_args(["--out", str(tmp_path), *bad])


def test_importing_the_demo_does_not_initialise_mpi() -> None:
    code = "import sys, odop.demo.heat, odop.demo.tasks; assert 'mpi4py' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_run_delay_counts_time_another_process_held_the_core() -> None:
    core = min(os.sched_getaffinity(0))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    previous = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(hog.pid, {core})
        os.sched_setaffinity(0, {core})
        before, end = run_delay_s(), time.monotonic() + 10
        while run_delay_s() == before and time.monotonic() < end:
            pass  # busy beside the hog until the kernel has made this process wait
        assert run_delay_s() > before
    finally:
        os.sched_setaffinity(0, previous)
        hog.kill()
        hog.wait()
