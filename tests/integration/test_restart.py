"""A scheduler killed with SIGKILL mid-run restarts from SQLite: nothing lost, nothing twice."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odop.launch.client import Client
from odop.paths import RunPaths
from odop.protocol import MsgType, new_id
from odop.store.executions import RunStore
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import executions, wait_for

pytestmark = pytest.mark.slow
N = 200

TASK = '''
import os, time
def mark(log):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (os.environ["ODOP_EXECUTION"] + "\\n").encode())
    os.close(fd)
    time.sleep(0.05)
'''


def daemon(*args: str, home: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "odop", *args],
                            env=child_env(ODOP_HOME=str(home)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def test_sigkill_scheduler_with_200_in_flight(tmp_path: Path, odop_home: Path) -> None:
    procs: list[subprocess.Popen] = []
    try:
        _kill_and_restart(tmp_path, odop_home, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def _kill_and_restart(tmp_path: Path, odop_home: Path, procs: list[subprocess.Popen]) -> None:
    (tmp_path / "marktask.py").write_text(TASK)
    log = tmp_path / "ran.log"
    paths = RunPaths(odop_home / "runs" / "restart").create()
    RunStore(paths.db).close()
    scheduler = daemon("scheduler", "--run", str(paths.root), home=odop_home)
    agent = daemon("agent", "--run", str(paths.root), "--node", "n1", "--interval", "0.2",
                   home=odop_home)
    procs += [scheduler, agent]
    client = Client(paths.scheduler_endpoint)
    spec = parse_spec({"name": "mark", "function": f"{tmp_path}/marktask.py:mark"},
                      source="test")
    client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
    ids = [new_id() for _ in range(N)]
    for execution in ids:
        client.submit(execution, "mark", {"log": str(log)})
    assert client.flush(30.0), "scheduler did not acknowledge every submission"
    wait_for(lambda: _done(paths) >= 20, 60, "some executions to finish")
    scheduler.send_signal(signal.SIGKILL)
    scheduler.wait()
    in_flight = N - _done(paths)
    assert in_flight > 50
    time.sleep(1.0)
    scheduler = daemon("scheduler", "--run", str(paths.root), home=odop_home)
    procs.append(scheduler)
    reply = client.request(MsgType.SIM_END, 120.0, rank=0)
    client.close()
    assert reply is not None and reply["type"] == "drained", reply
    scheduler.wait(10)
    agent.wait(10)
    rows = {r["id"]: r for r in executions(paths.root)}
    assert set(rows) == set(ids), "an execution was lost or invented"
    assert all(r["state"] == "done" for r in rows.values())
    runs = collections.Counter(log.read_text().split())
    twice = {e: n for e, n in runs.items() if n > 1}
    retried = {e for e, r in rows.items() if r["attempt"] > 0}
    assert set(twice) <= retried, "ran twice without a recorded retry"
    assert set(runs) == set(ids)
    assert os.path.exists(paths.db)


def _done(paths: RunPaths) -> int:
    store = RunStore(paths.db, readonly=True)
    try:
        return store.counts().get("done", 0)
    finally:
        store.close()
