"""An agent started by hand (external mode) learns the ranks registered on its node and
never grants their cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from odop.launch.client import Client
from odop.paths import RunPaths
from odop.protocol import MsgType, new_id
from odop.store.executions import RunStore
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import executions, wait_for

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")]

TASK = "import os\ndef where():\n    return sorted(os.sched_getaffinity(0))\n"


def test_hand_started_agent_follows_registered_ranks(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "where.py").write_text(TASK)
    paths = RunPaths(odop_home / "runs" / "ext").create()
    RunStore(paths.db).close()
    # a busy rank bound to core 0 (a waiting one would share its core)
    rank = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(rank.pid, {0})
    (paths.root / "nodes").mkdir()
    (paths.root / "nodes" / "n.json").write_text(json.dumps(
        {"node": "n", "ranks": [{"rank": 0, "pid": rank.pid, "host": "n", "cores": [0]}]}))
    env = child_env(ODOP_HOME=str(odop_home))
    procs = [rank] + [subprocess.Popen([sys.executable, "-m", "odop", *args], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                      for args in (["scheduler", "--run", "ext"],
                                   ["agent", "--run", "ext", "--node", "n", "--interval", "0.2"])]
    client = Client(paths.scheduler_endpoint)
    try:
        spec = parse_spec({"name": "where", "function": f"{tmp_path}/where.py:where"},
                          source="test")
        client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
        for _ in range(4):
            client.submit(new_id(), "where", {})
        assert client.flush(20)
        wait_for(lambda: [e["state"] for e in executions(paths.root)] == ["done"] * 4, 60,
                 "four executions done")
        assert {tuple(e["cores"]) for e in executions(paths.root)} == {(1,)}
    finally:
        client.close()
        for proc in procs:
            proc.kill()
