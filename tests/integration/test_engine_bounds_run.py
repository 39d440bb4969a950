"""A live run (real scheduler, agent, tasks) with the engine's bounds set in the run's
config, as ``odop.start(config=...)`` records it: ``memory_bound = "sample"`` and
``output_max_bytes`` reach the agent; a task under its memory max runs, one over it is
killed with the reason; a task printing without end is cut, the record and ``odop status``
say so; a retried task sees the same execution id and attempt 1."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from odop.paths import RunPaths
from odop.protocol import MsgType
from odop.store.executions import RunStore
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = pytest.mark.slow

TASKS = '''import json, os, time
import odop
def flaky(out):
    ctx = odop.context()
    with open(out, "a") as fh:
        fh.write(json.dumps({"id": ctx.execution_id, "attempt": ctx.attempt,
                             "env": [os.environ["ODOP_EXECUTION_ID"], os.environ["ODOP_ATTEMPT"]]})
                 + "\\n")
    if ctx.attempt == 0:
        raise RuntimeError("the first attempt fails")
def fifty():
    import numpy as np
    block = np.ones(50_000_000 // 8)
    time.sleep(0.6)
    assert block.sum() == block.size
def hog():
    blocks = []
    while True:
        blocks.append(bytearray(10**7))
        time.sleep(0.01)
def loud():
    while True:
        os.write(1, b"z" * 4095 + b"\\n")
'''
BOUND = 2**20
MEMORY = {"min": "10M", "max": "100M"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("bounds")
    home = tmp / "home"
    (tmp / "tasks.py").write_text(TASKS)
    paths = RunPaths(home / "runs" / "bounds").create()
    store = RunStore(paths.db)  # what odop.start(config=...) records, before the agent starts
    store.set_meta("config", {"memory_bound": "sample", "output_max_bytes": BOUND})
    store.close()
    fields: dict[str, dict[str, Any]] = {
        "flaky": {"max_retries": 1, "retry_backoff": "0s"},
        "fifty": {"memory": MEMORY}, "hog": {"memory": MEMORY}, "loud": {"time": "0.5s"}}
    specs = [parse_spec({"name": name, "function": f"{tmp}/tasks.py:{name}", **extra},
                        source="test") for name, extra in fields.items()]
    with live_run(home, "bounds", cores="0,1") as (paths, client):
        client.send(MsgType.DECLARE, track=True, tasks=[s.to_dict() for s in specs])
        client.submit("flaky1", "flaky", {"out": str(tmp / "flaky.jsonl")})
        for name in ("fifty", "hog", "loud"):
            client.submit(f"{name}1", name, {})
        assert client.flush(20)
        wait_for(lambda: all(e["state"] in ("done", "failed") for e in executions(paths.root))
                 and len(executions(paths.root)) == 4, 90, "the four executions to end")
        assert client.request(MsgType.SIM_END, 30, rank=0) is not None
    status = subprocess.run([sys.executable, "-m", "odop", "status", "bounds"],
                            capture_output=True, text=True, timeout=60,
                            env=child_env(ODOP_HOME=str(home)))
    return {"rows": {e["task"]: e for e in executions(paths.root)}, "tmp": tmp,
            "paths": paths, "status": status}


def test_a_task_under_its_memory_max_runs(finished: dict[str, Any]) -> None:
    row = finished["rows"]["fifty"]
    assert row["state"] == "done", row


def test_a_task_over_its_memory_max_is_killed_and_says_how(finished: dict[str, Any]) -> None:
    row = finished["rows"]["hog"]
    assert row["state"] == "failed" and row["signal"] == 9, row
    assert row["reason"].startswith("out of memory: held "), row
    assert row["reason"].endswith("over its max of 100.0 MB (sampled every 0.25 s: no "
                                  "writable memory cgroup)"), row


def test_endless_output_is_cut_and_recorded(finished: dict[str, Any]) -> None:
    row = finished["rows"]["loud"]
    assert row["state"] == "failed" and row["reason"] == "time limit exceeded", row
    assert row["output_cut_bytes"] > 10 * BOUND, row
    stdout = finished["paths"].root / "tasks" / row["id"] / "stdout"
    assert stdout.stat().st_size < BOUND + 200
    assert f"[odop: {row['output_cut_bytes']} bytes of stdout cut here".encode() in \
        stdout.read_bytes()
    status = finished["status"]
    assert status.returncode == 0, status.stderr
    assert f"loud1  output cut: {row['output_cut_bytes']} bytes" in status.stdout, status.stdout


def test_a_retried_task_sees_its_id_and_attempt(finished: dict[str, Any]) -> None:
    row = finished["rows"]["flaky"]
    assert row["state"] == "done" and row["attempt"] == 1, row
    lines = (finished["tmp"] / "flaky.jsonl").read_text().splitlines()
    seen = [json.loads(line) for line in lines]
    assert seen == [{"id": "flaky1", "attempt": 0, "env": ["flaky1", "0"]},
                    {"id": "flaky1", "attempt": 1, "env": ["flaky1", "1"]}]
