"""A task that crashes, hangs, forks without bound or allocates without bound is contained
and recorded, and the other tasks and the simulation finish correctly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import child_env
from tests.integration.helpers import executions, wait_gone

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

SIM = '''
import json, os, sys, time
import odop

@odop.task(name="ok", time="5s", cpus=1)
def ok(out):
    with open(out, "w") as fh:
        fh.write("done")

@odop.task(name="crash", time="5s", cpus=1)
def crash():
    sys.exit(1)

@odop.task(name="abort", time="5s", cpus=1)
def abort():
    os.abort()

@odop.task(name="hang", time="1s", cpus=1)
def hang():
    time.sleep(600)

@odop.task(name="forks", time="20s", cpus=1)
def forks(out, children=200):
    with open(out, "w") as fh:
        for _ in range(children):
            pid = os.fork()
            if pid == 0:
                time.sleep(600)
                os._exit(0)
            fh.write(f"{pid}\\n")
            fh.flush()
    time.sleep(float(os.environ.get("FORKS_LINGER", "0.5")))

@odop.task(name="hog", time="10s", cpus=1, memory="200M")
def hog():
    chunks = []
    while True:
        chunks.append(bytearray(16 * 1024 * 1024))

if __name__ == "__main__":
    out = sys.argv[1]
    run = odop.start(run_name="containment")
    ids = {name: odop.submit(name, **kw) for name, kw in [
        ("crash", {}), ("abort", {}), ("hang", {}), ("forks", {"out": f"{out}/forks.txt"}),
        ("hog", {}), ("ok", {"out": f"{out}/ok.txt"})]}
    total = 0.0
    for step in range(20):          # the simulation's own work goes on meanwhile
        total += sum(i * i for i in range(20_000))
        time.sleep(0.05)
    print(json.dumps({"run": str(run.root), "ids": ids}), flush=True)
    summary = odop.stop(timeout_s=240)
    print(json.dumps({"summary": summary, "total": total}), flush=True)
'''


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the simulation once; its executions by task name, plus what it printed."""
    folder = tmp_path_factory.mktemp("containment")
    (folder / "out").mkdir()
    (folder / "sim.py").write_text(SIM)
    proc = subprocess.run([sys.executable, str(folder / "sim.py"), str(folder / "out")],
                          capture_output=True, text=True, cwd=folder, timeout=300,
                          env=child_env(ODOP_HOME=str(folder / "home")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    run_dir = Path(lines[0]["run"])
    by_task = {e["task"]: e for e in executions(run_dir)}
    return {"by_task": by_task, "out": folder / "out", "stdout": lines, "run": run_dir}


def test_simulation_finishes_correctly(finished_run: dict[str, Any]) -> None:
    end = finished_run["stdout"][-1]
    assert end["total"] == 20 * sum(i * i for i in range(20_000))
    assert finished_run["by_task"]["ok"]["state"] == "done"
    assert (finished_run["out"] / "ok.txt").read_text() == "done"


@pytest.mark.parametrize("task, exit_code, sig", [("crash", 1, None), ("abort", None, 6)])
def test_crashing_task_is_recorded(finished_run: dict[str, Any], task: str,
                                   exit_code: int | None, sig: int | None) -> None:
    row = finished_run["by_task"][task]
    assert row["state"] == "failed"
    assert row["exit_code"] == exit_code and row["signal"] == sig, row


def test_hanging_task_is_killed_at_its_time_limit(finished_run: dict[str, Any]) -> None:
    row = finished_run["by_task"]["hang"]
    assert row["state"] == "failed", row
    assert "time limit" in (row["reason"] or ""), row
    assert row["wall_s"] < 60, row  # time = 1s, limit = time x time_limit_factor


def test_fork_bomb_children_die_with_the_task(finished_run: dict[str, Any]) -> None:
    pids = [int(p) for p in (finished_run["out"] / "forks.txt").read_text().split()]
    assert pids
    assert wait_gone(pids, 60.0) == []  # killed idle-priority children exit slowly under load
    row = finished_run["by_task"]["forks"]
    if len(pids) == 200:
        assert row["state"] == "done", row
    else:  # a loaded machine starves an idle-priority task: then its time limit ends it
        assert row["state"] == "failed" and "time limit" in row["reason"], row


def test_memory_hog_is_killed_and_recorded_out_of_memory(finished_run: dict[str, Any]) -> None:
    row = finished_run["by_task"]["hog"]
    assert row["state"] == "failed", row
    assert "out of memory" in (row["reason"] or ""), row


def test_stopped_fork_bomb_leaves_no_child(tmp_path: Path) -> None:
    """A task that outlives its time limit, with 200 children, is killed; no child survives."""
    (tmp_path / "out").mkdir()
    script = SIM.replace('[\n        ("crash", {}), ("abort", {}), ("hang", {}), ', '[(')
    script = script.replace('("forks", {"out": f"{out}/forks.txt"}),\n        ("hog", {}), '
                            '("ok", {"out": f"{out}/ok.txt"})]', '"forks", {"out": '
                            'f"{out}/forks.txt"})]')
    script = script.replace('name="forks", time="20s"', 'name="forks", time="2s"')
    assert script.count('"forks", time="2s"') == 1
    (tmp_path / "sim.py").write_text(script)
    proc = subprocess.run([sys.executable, str(tmp_path / "sim.py"), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=child_env(ODOP_HOME=str(tmp_path / "home"), FORKS_LINGER="600"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    pids = [int(p) for p in (tmp_path / "out" / "forks.txt").read_text().split()]
    assert pids
    assert wait_gone(pids, 60.0) == []  # killed idle-priority children exit slowly under load
    row = executions(Path(json.loads(proc.stdout.splitlines()[0])["run"]))[0]
    assert row["state"] == "failed" and "time limit" in row["reason"], row
