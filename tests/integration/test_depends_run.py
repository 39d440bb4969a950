"""depends_on in a real run (scheduler and agent processes, real files): an execution of
``b`` starts only after the execution of ``a`` for the same snapshot has ended, is skipped
with the reason when that one failed, runs at once when ``a`` never saw the snapshot, and
keeps waiting across a scheduler killed and restarted."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from odop.launch.client import Client
from odop.paths import RunPaths
from odop.protocol import MsgType, new_id
from odop.store.executions import RunStore
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import executions, wait_for

pytestmark = pytest.mark.slow

TASKS = '''
import os, time
def a(path):
    time.sleep(4.0 if os.path.basename(path).startswith("slow") else 1.0)
    if os.path.basename(path).startswith("bad"):
        raise RuntimeError("a bad snapshot")
def b(path):
    pass
'''


def daemon(home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "odop", *args],
                            env=child_env(ODOP_HOME=str(home)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@contextmanager
def two_core_run(tmp_path: Path, home: Path, specs: list[dict[str, Any]]
                 ) -> Iterator[tuple[RunPaths, Client, list[subprocess.Popen]]]:
    """A run with a scheduler and a two-core agent, ``specs`` declared (functions of
    ``TASKS``): (run folder, client, [scheduler, agent]); all killed on the way out."""
    (tmp_path / "deptasks.py").write_text(TASKS)
    paths = RunPaths(home / "runs" / "deps").create()
    RunStore(paths.db).close()
    procs = [daemon(home, "scheduler", "--run", str(paths.root)),
             daemon(home, "agent", "--run", str(paths.root), "--node", "n", "--cores", "0,1",
                    "--interval", "0.2")]
    client = Client(paths.scheduler_endpoint)
    try:
        declared = [parse_spec({**s, "function": f"{tmp_path}/deptasks.py:{s['name']}"},
                               source="test").to_dict() for s in specs]
        client.send(MsgType.DECLARE, track=True, tasks=declared)
        assert client.flush(30.0), "the scheduler did not take the declarations"
        yield paths, client, procs
    finally:
        client.close()
        for proc in procs:
            proc.kill()
            proc.wait(10)


def drain(client: Client) -> None:
    reply = client.request(MsgType.SIM_END, 120.0, rank=0)
    assert reply is not None and reply["type"] == "drained", reply


def by_task_and_path(run_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["task"], Path(r["args"]["path"]).name): r for r in executions(run_dir)}


def test_b_follows_a_on_each_snapshot_and_is_skipped_when_a_failed(
        tmp_path: Path, odop_home: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    trigger = {"file": f"{data}/*.dat"}
    # b is declared first: its watcher would see each file first
    specs = [{"name": "b", "depends_on": ["a"], "trigger": trigger},
             {"name": "a", "trigger": trigger}]
    with two_core_run(tmp_path, odop_home, specs) as (paths, client, _):
        for name in ("ok1.dat", "bad.dat", "ok2.dat"):
            (data / name).write_bytes(b"x")
        wait_for(lambda: len(executions(paths.root)) == 6, 30, "six submissions")
        client.submit(new_id(), "b", {"path": str(data / "unseen.dat")})
        drain(client)
    rows = by_task_and_path(paths.root)
    for name in ("ok1.dat", "ok2.dat"):
        a, b = rows["a", name], rows["b", name]
        assert a["state"] == b["state"] == "done"
        assert b["started_at"] >= a["ended_at"], (name, a, b)
    a, b = rows["a", "bad.dat"], rows["b", "bad.dat"]
    assert a["state"] == "failed" and b["state"] == "skipped" and b["started_at"] is None
    assert b["reason"] == f"depends on a: its execution {a['id']} with the same arguments failed"
    assert rows["b", "unseen.dat"]["state"] == "done"  # no execution of a for it: it runs


def test_a_restarted_scheduler_keeps_b_waiting(tmp_path: Path, odop_home: Path) -> None:
    specs = [{"name": "a"}, {"name": "b", "depends_on": "a"}]
    snapshot = str(tmp_path / "slow.dat")
    with two_core_run(tmp_path, odop_home, specs) as (paths, client, procs):
        ids = {"a": new_id(), "b": new_id()}
        client.submit(ids["a"], "a", {"path": snapshot})
        client.submit(ids["b"], "b", {"path": snapshot})
        assert client.flush(30.0)
        states = lambda: {r["task"]: r["state"] for r in executions(paths.root)}  # noqa: E731
        wait_for(lambda: states().get("a") == "running", 30, "a to run")
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait(10)
        procs[0] = daemon(odop_home, "scheduler", "--run", str(paths.root))
        drain(client)
    rows = {r["task"]: r for r in executions(paths.root)}
    assert rows["a"]["state"] == rows["b"]["state"] == "done"
    assert rows["b"]["started_at"] >= rows["a"]["ended_at"], rows
