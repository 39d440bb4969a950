"""Zygotes on real processes: one per task module, MPI left alone, renewed when the
module's file changes, and a zygote's death loses only its own running tasks."""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.engine.engine import Engine, Exit

SIMLIKE = '''
import json, os, sys
import numpy
from mpi4py import MPI
IMPORTED_BY = os.getpid()
MPI_UP = MPI.Is_initialized()
VERSION = 1

def where(out):
    open(out, "w").write(json.dumps({"imported_by": IMPORTED_BY, "me": os.getpid(),
                                     "parent": os.getppid(), "mpi_up": MPI_UP,
                                     "version": VERSION}))

def sleepy():
    import time
    time.sleep(60)

if __name__ == "__main__":
    open(sys.argv[0] + ".main-ran", "w").close()
    MPI.COMM_WORLD.Barrier()
'''


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "sim.py").write_text(SIMLIKE)
    eng = Engine(tmp_path / "run", grace_s=0.5, cwd=str(tmp_path), cgroups=None)
    assert eng.server is not None and eng.server.wait_ready()
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


def wait_exit(engine: Engine, execution: str, timeout: float = 30) -> Exit:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for e in engine.reap():
            if e.execution == execution:
                return e
        time.sleep(0.01)
    raise AssertionError(f"{execution} did not exit")


def run_where(engine: Engine, tmp_path: Path, name: str) -> dict:
    out = tmp_path / f"{name}.json"
    engine.start(name, {"kind": "python", "target": f"{tmp_path}/sim.py:where"},
                 {"out": str(out)}, [0])
    result = wait_exit(engine, name)
    assert result.exit_code == 0, (tmp_path / f"run/tasks/{name}/stderr").read_text()
    return json.loads(out.read_text())


def warm_info(engine: Engine, tmp_path: Path, prefix: str) -> dict:
    """Run until a task is served by a zygote (it imported the module, not the task)."""
    for i in range(40):
        info = run_where(engine, tmp_path, f"{prefix}{i}")
        if info["imported_by"] != info["me"]:
            return info
        time.sleep(0.1)
    raise AssertionError("no task was served by a zygote")


def test_a_simulation_module_is_imported_once_without_mpi_or_its_main(
        engine: Engine, tmp_path: Path) -> None:
    info = warm_info(engine, tmp_path, "m")
    zygote = info["imported_by"]
    assert info["parent"] == zygote and info["mpi_up"] is False
    assert len(os.listdir(f"/proc/{zygote}/task")) == 1  # fork-safe: one thread
    assert not (tmp_path / "sim.py.main-ran").exists()
    assert run_where(engine, tmp_path, "again")["imported_by"] == zygote


def test_a_changed_module_gets_a_new_zygote(engine: Engine, tmp_path: Path) -> None:
    old = warm_info(engine, tmp_path, "a")
    assert old["version"] == 1
    running = "long"
    engine.start(running, {"kind": "python", "target": f"{tmp_path}/sim.py:sleepy"}, {}, [0])
    (tmp_path / "sim.py").write_text(SIMLIKE.replace("VERSION = 1", "VERSION = 2"))
    new = warm_info(engine, tmp_path, "b")
    first_after = json.loads((tmp_path / "b0.json").read_text())
    assert first_after["version"] == 2  # never the old module once the file changed
    assert new["version"] == 2 and new["imported_by"] != old["imported_by"]
    assert running in engine.tasks  # the old zygote's task runs on
    engine.tasks[running].stop("test")
    assert wait_exit(engine, running).signal == signal.SIGTERM


def test_a_dead_zygote_loses_only_its_tasks(engine: Engine, tmp_path: Path) -> None:
    zygote = warm_info(engine, tmp_path, "z")["imported_by"]
    engine.start("s1", {"kind": "python", "target": f"{tmp_path}/sim.py:sleepy"}, {}, [0])
    server = engine.server
    os.kill(zygote, signal.SIGKILL)
    assert wait_exit(engine, "s1").signal == signal.SIGKILL
    assert engine.server is server  # the server serves on
    assert run_where(engine, tmp_path, "after")["version"] == 1


def test_the_drain_lifts_tasks_started_at_idle_priority(engine: Engine, tmp_path: Path) -> None:
    if os.geteuid() != 0 and resource.getrlimit(resource.RLIMIT_NICE)[0] < 1:
        pytest.skip("an unprivileged engine may not lift SCHED_IDLE (RLIMIT_NICE is 0)")
    proc = engine.start("idle", {"kind": "python", "target": f"{tmp_path}/sim.py:sleepy"},
                        {}, [0])
    end = time.monotonic() + 10
    while os.sched_getscheduler(proc.pid) != os.SCHED_IDLE and time.monotonic() < end:
        time.sleep(0.01)  # until the task has lowered itself
    assert os.sched_getscheduler(proc.pid) == os.SCHED_IDLE
    assert engine.promote() >= 1
    assert os.sched_getscheduler(proc.pid) == os.SCHED_OTHER
    assert os.getpriority(os.PRIO_PROCESS, proc.pid) == 19  # still below everything else


def test_a_zygote_grown_for_the_drain_is_not_idle(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "drained.py").write_text(SIMLIKE)
    target = f"{tmp_path}/drained.py:where"
    for i in range(40):
        out = tmp_path / f"d{i}.json"
        engine.start(f"d{i}", {"kind": "python", "target": target, "drain": True},
                     {"out": str(out)}, [0])
        assert wait_exit(engine, f"d{i}").exit_code == 0
        info = json.loads(out.read_text())
        if info["imported_by"] != info["me"]:
            break
        time.sleep(0.1)
    zygote = info["imported_by"]
    assert zygote == info["parent"]
    assert Path(f"/proc/{zygote}/autogroup").read_text().split()[-1] == "0"  # not 19
    other = warm_info(engine, tmp_path, "n")["imported_by"]  # grown for a task of the run
    assert Path(f"/proc/{other}/autogroup").read_text().split()[-1] == "19"


def test_a_start_whose_folder_cannot_be_made_leaves_no_task(engine: Engine,
                                                            tmp_path: Path) -> None:
    tasks = tmp_path / "run" / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    (tasks / "blocked").write_text("a file where the task's folder goes")
    with pytest.raises(OSError):
        engine.start("blocked", {"kind": "python", "target": f"{tmp_path}/sim.py:sleepy"},
                     {}, [0])
    assert "blocked" not in engine.tasks
    assert run_where(engine, tmp_path, "next")["version"] == 1  # the server serves on
