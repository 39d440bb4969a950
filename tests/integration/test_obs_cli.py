from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from odop_obs import Subscriber, load_arrays, read_samples

pytestmark = pytest.mark.slow


def _obs(*args: str) -> list[str]:
    return [sys.executable, "-m", "odop_obs", *args]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(_obs(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_duration_run_then_read_json(tmp_path: Path) -> None:
    sim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        done = subprocess.run(
            _obs("--interval", "0.25", "--duration", "2.5", "--pid", str(sim.pid),
                 "--out", str(tmp_path), "--json", "--node", "cli"),
            capture_output=True, text=True, timeout=60)
    finally:
        sim.kill()
        sim.wait()
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["samples"] == 10 and summary["stopped_by"] == "end"
    read = subprocess.run(_obs("read", str(tmp_path), "--json"), capture_output=True,
                          text=True, timeout=60)
    assert read.returncode == 0, read.stderr
    samples = [json.loads(line) for line in read.stdout.splitlines()]
    assert len(samples) == summary["samples"]  # one sample per interval, none doubled
    assert [s["seq"] for s in samples] == list(range(10))
    for s in samples:
        assert {"t", "node", "cpu", "memory", "processes", "gpus", "power"} <= set(s)
        assert len(s["cpu"]["per_core"]) == os.cpu_count()
        assert s["power"]["source"] and s["node"] == "cli"
        if not s["gpus"]:
            assert s["gpus_reason"]
    sim_rows = [r for r in samples[-1]["processes"]["watched"] if r["role"] == "sim"]
    assert [r["pid"] for r in sim_rows] == [sim.pid]
    assert load_arrays(tmp_path)["cpu.per_core"].shape == (10, os.cpu_count())


def test_publishes_records_and_stops_on_sigterm(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/obs.sock"
    sub = Subscriber(endpoint, node="cli-node")
    sim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    proc = _start("--interval", "0.1", "--node", "cli-node", "--publish", endpoint,
                  "--out", str(tmp_path), "--pid", str(sim.pid), "--no-gpu", "--json")
    try:
        sample = sub.recv(timeout_s=20)
        assert sample is not None and sample["node"] == "cli-node"
        roles = {row["role"] for row in sample["processes"]["watched"]}
        assert roles == {"odop", "sim"}
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        sim.kill()
        sim.wait()
        sub.close()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stopped_by"] == "SIGTERM" and summary["published"] >= 1
    recorded = list(read_samples(tmp_path))
    assert len(recorded) == summary["samples"]
    assert [s["seq"] for s in recorded] == list(range(len(recorded)))


def test_stdout_json_lines_and_count() -> None:
    proc = _start("--interval", "0.05", "--count", "3", "--no-self")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [s["seq"] for s in lines] == [0, 1, 2]
    assert lines[0]["processes"]["watched"] == []


def test_bad_option_is_a_clear_error() -> None:
    proc = _start("--pid", "99999999", "--count", "1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "process 99999999 does not exist" in err
