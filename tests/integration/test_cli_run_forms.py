"""`odop submit RUN TASK` and `odop cancel RUN ID` against a live scheduler, then the same
run once its scheduler has ended: refused at once (issue 18: items 14, 15)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odop.protocol import MsgType
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import components, executions, live_run, wait_for

pytestmark = pytest.mark.slow

TASK = "import time\ndef wait(seconds):\n    time.sleep(float(seconds))\n"


def odop(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "odop", *args], capture_output=True,
                          text=True, timeout=60, env=child_env(ODOP_HOME=str(home)))


def test_the_run_first_then_an_ended_run(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "waits.py").write_text(TASK)
    with live_run(odop_home, "forms") as (paths, client):
        spec = parse_spec({"name": "wait", "function": f"{tmp_path}/waits.py:wait"},
                          source="test")
        client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
        assert client.flush(20)
        sub = odop("submit", "forms", "wait", "seconds=30", "--json", home=odop_home)
        assert sub.returncode == 0, sub.stderr
        execution = json.loads(sub.stdout)["execution"]
        latest = odop("submit", "latest", "wait", "seconds=30", home=odop_home)
        assert latest.returncode == 0 and "latest run: forms created " in latest.stderr
        for ex in (execution, latest.stdout.strip()):
            cancel = odop("cancel", "forms", ex[:12], home=odop_home)
            assert cancel.returncode == 0, cancel.stderr
            assert cancel.stdout.strip() == f"cancelled {ex}"
        wait_for(lambda: {e["state"] for e in executions(paths.root)} == {"cancelled"}, 30,
                 "both cancelled")
        assert client.request(MsgType.SIM_END, 30, rank=0) is not None
        wait_for(lambda: all(c["ended_at"] for c in components(paths.root)
                             if c["role"] == "scheduler"), 30, "the scheduler to end")
        t0 = time.monotonic()
        late = odop("submit", "forms", "wait", "seconds=1", "--timeout", "30", home=odop_home)
        assert late.returncode == 2 and time.monotonic() - t0 < 20
        assert "run forms has ended (its scheduler stopped at " in late.stderr, late.stderr
