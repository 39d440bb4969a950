from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from odop_obs import Subscriber, read_samples

pytestmark = pytest.mark.slow


def _start(*args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "odop_obs", *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_standalone_publishes_records_and_stops_on_sigterm(tmp_path: Path) -> None:
    endpoint = f"ipc://{tmp_path}/obs.sock"
    sub = Subscriber(endpoint, node="cli-node")
    sim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    proc = _start("--interval", "0.1", "--node", "cli-node", "--pub", endpoint,
                  "--run-dir", str(tmp_path), "--pid", str(sim.pid), "--no-gpu")
    try:
        sample = sub.recv(timeout_s=20)
        assert sample is not None and sample["node"] == "cli-node"
        roles = {row["role"] for row in sample["processes"]["watched"]}
        assert roles == {"odop", "sim"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        sim.kill()
        sub.close()
    recorded = list(read_samples(tmp_path / "obs" / "cli-node.jsonl"))
    assert recorded and recorded[-1]["seq"] == len(recorded) - 1


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
