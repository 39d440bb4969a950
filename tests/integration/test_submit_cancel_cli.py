"""`odop submit` and `odop cancel` from a shell, against a live scheduler and agent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from odop.paths import RunPaths
from odop.protocol import MsgType
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = pytest.mark.slow

TASK = "import time\ndef wait(seconds):\n    time.sleep(float(seconds))\n"


def odop(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "odop", *args], capture_output=True,
                          text=True, timeout=60, env=child_env(ODOP_HOME=str(home)))


def test_submit_and_cancel_from_the_shell(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "waits.py").write_text(TASK)
    with live_run(odop_home, "cli") as (paths, client):
        spec = parse_spec({"name": "wait", "function": f"{tmp_path}/waits.py:wait"},
                          source="test")
        client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
        assert client.flush(20)
        first = json.loads(odop("submit", "wait", "seconds=30", "--run", "cli", "--json",
                                home=odop_home).stdout)["execution"]
        second = odop("submit", "wait", "seconds=30", "--run", "cli", home=odop_home)
        assert second.returncode == 0, second.stderr
        queued = second.stdout.strip()
        wait_for(lambda: _state(paths, first) == "running", 30, "the first to run")
        assert _state(paths, queued) == "queued"  # one core: the second waits
        for execution in (queued, first[:12]):
            result = odop("cancel", execution, "--run", "cli", home=odop_home)
            assert result.returncode == 0, result.stderr
        wait_for(lambda: _state(paths, first) == "cancelled", 30, "the running one to stop")
        assert _state(paths, queued) == "cancelled"
        bad = odop("submit", "nope", "--run", "cli", home=odop_home)
        assert bad.returncode == 2 and "unknown task 'nope'" in bad.stderr
        client.request(MsgType.SIM_END, 30, rank=0)


def _state(paths: RunPaths, execution: str) -> str | None:
    return next((e["state"] for e in executions(paths.root) if e["id"] == execution), None)
