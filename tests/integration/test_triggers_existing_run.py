"""Real runs: a second ``odop run`` in the same folder processes only the lines appended to
the log and the files written during it (not those an earlier run left), unless the
trigger says ``existing = "process"``; and a file or line the simulation wrote after the
run started but before the scheduler watched is processed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odop.launch.client import Client
from odop.paths import RunPaths
from odop.protocol import MsgType
from odop.store.executions import RunStore
from odop.tasks.spec import parse_spec
from tests.conftest import child_env
from tests.integration.helpers import executions

pytestmark = pytest.mark.slow

TASKS = '''
def grep_err(line, path, lineno):
    pass
def digest(path):
    pass
'''

PROGRAM = '''
import sys
step = sys.argv[1]
with open("sim.log", "a") as fh:
    fh.write(f"run {step} a\\nrun {step} b\\n")
open(f"data/f{step}.dat", "w").write(step)
'''


def specs(folder: Path, existing: str | None) -> list[dict]:
    extra = {"existing": existing} if existing else {}
    return [{"name": "grep_err", "function": "post:grep_err",
             "trigger": {"line": str(folder / "sim.log"), **extra}},
            {"name": "digest", "function": "post:digest",
             "trigger": {"file": str(folder / "data" / "*.dat"), **extra}}]


def odop_run(folder: Path, step: int, existing: str | None = None) -> list[dict]:
    """``odop run`` of PROGRAM in ``folder``; the executions of its run."""
    tasks = folder / f"tasks{step}"
    tasks.mkdir()
    (tasks / "post.py").write_text(TASKS)
    (tasks / "post.json").write_text(json.dumps({"tasks": specs(folder, existing)}))
    proc = subprocess.run([sys.executable, "-m", "odop", "run", "--run", f"r{step}", "--tasks",
                           str(tasks), "--", sys.executable, "prog.py", str(step)],
                          capture_output=True, text=True, timeout=90, cwd=folder,
                          env=child_env())
    assert proc.returncode == 0, proc.stderr
    rows = executions(Path(os.environ["ODOP_HOME"]) / "runs" / f"r{step}")
    assert rows and all(r["state"] == "done" for r in rows), rows
    return rows


def seen(rows: list[dict]) -> tuple[list[int], list[str]]:
    """(line numbers, file names) the run's tasks were given."""
    return (sorted(r["args"]["lineno"] for r in rows if r["task"] == "grep_err"),
            sorted(Path(r["args"]["path"]).name for r in rows if r["task"] == "digest"))


def age_everything(folder: Path) -> None:
    """As if the earlier runs were long ago (instead of sleeping past the clock slack)."""
    old = time.time() - 60
    for path in [folder / "sim.log", *(folder / "data").iterdir()]:
        os.utime(path, (old, old))


def test_a_second_run_sees_only_what_is_new(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    (tmp_path / "data").mkdir()
    assert seen(odop_run(tmp_path, 1)) == ([1, 2], ["f1.dat"])
    age_everything(tmp_path)
    assert seen(odop_run(tmp_path, 2)) == ([3, 4], ["f2.dat"])
    age_everything(tmp_path)
    assert seen(odop_run(tmp_path, 3, existing="process")) == (
        [1, 2, 3, 4, 5, 6], ["f1.dat", "f2.dat", "f3.dat"])


def test_what_the_run_wrote_before_the_watcher_started_is_new(tmp_path: Path,
                                                              odop_home: Path) -> None:
    (tmp_path / "post.py").write_text(TASKS)
    data = tmp_path / "data"
    data.mkdir()
    (data / "old.dat").write_text("an earlier run's")
    os.utime(data / "old.dat", (time.time() - 60, time.time() - 60))
    paths = RunPaths(odop_home / "runs" / "late").create()
    store = RunStore(paths.db)
    store.set_meta("started", time.time())  # the run starts; its scheduler comes later
    store.close()
    (data / "early.dat").write_text("written by the simulation before odop watched")
    (tmp_path / "sim.log").write_text("first line\n")
    env = child_env(ODOP_HOME=str(odop_home))
    procs = [subprocess.Popen([sys.executable, "-m", "odop", *args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for args in (["scheduler", "--run", "late"],
                          ["agent", "--run", "late", "--node", "n", "--interval", "0.2"])]
    client = Client(paths.scheduler_endpoint)
    try:
        declared = [parse_spec({**s, "function": f"{tmp_path}/post.py:{s['function'][5:]}"},
                               source="test").to_dict() for s in specs(tmp_path, None)]
        client.send(MsgType.DECLARE, track=True, tasks=declared)
        assert client.flush(30.0)
        reply = client.request(MsgType.SIM_END, 60.0, rank=0)
        assert reply is not None and reply["type"] == "drained", reply
    finally:
        client.close()
        for proc in procs:
            proc.kill()
            proc.wait(10)
    assert seen(executions(paths.root)) == ([1], ["early.dat"])
