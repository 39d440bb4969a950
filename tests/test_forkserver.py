"""The fork server on real processes: isolation, restart after its death, module warm-up."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.engine.engine import Engine, Exit
from odop.engine.zygote import PROBE_HEAVY, probe_code

LIGHT = '''
import json, os
IMPORTED_BY = os.getpid()
def where(out):
    open(out, "w").write(json.dumps({"imported_by": IMPORTED_BY, "me": os.getpid(),
                                     "parent": os.getppid()}))
def crash():
    import ctypes
    ctypes.string_at(0)
def sleepy():
    import time
    time.sleep(60)
'''
HEAVY = '''
import json, os
import numpy
IMPORTED_BY = os.getpid()
def where(out):
    threads = numpy.ones((200, 200)) @ numpy.ones((200, 200))
    open(out, "w").write(json.dumps({"imported_by": IMPORTED_BY, "me": os.getpid(),
                                     "parent": os.getppid(),
                                     "omp": os.environ["OMP_NUM_THREADS"]}))
'''
THREADED = '''
import json, os, threading
IMPORTED_BY = os.getpid()
threading.Thread(target=threading.Event().wait, daemon=True).start()
def where(out):
    open(out, "w").write(json.dumps({"imported_by": IMPORTED_BY, "me": os.getpid()}))
'''


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "light.py").write_text(LIGHT)
    (tmp_path / "heavy.py").write_text(HEAVY)
    (tmp_path / "threaded.py").write_text(THREADED)
    eng = Engine(tmp_path / "run", grace_s=0.5, cwd=str(tmp_path), cgroups=None)
    assert eng.server is not None and eng.server.wait_ready()
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


def run_one(engine: Engine, execution: str, target: str, args: dict, timeout: float = 30,
            cores: list[int] | None = None) -> Exit:
    engine.start(execution, {"kind": "python", "target": target}, args, cores or [0])
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        exits = engine.reap()
        if exits:
            return exits[0]
        time.sleep(0.01)
    raise AssertionError(f"{execution} did not exit")


def test_a_crashing_task_does_not_hurt_the_server(engine: Engine, tmp_path: Path) -> None:
    server = engine.server
    result = run_one(engine, "c1", f"{tmp_path}/light.py:crash", {})
    assert result.signal == signal.SIGSEGV and "SIGSEGV" in result.reason
    out = tmp_path / "after.json"
    assert run_one(engine, "c2", f"{tmp_path}/light.py:where", {"out": str(out)}).exit_code == 0
    assert engine.server is server and served_by(json.loads(out.read_text()), server.pid)


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def served_by(info: dict, server: int) -> bool:
    """Whether ``server`` forked the task: as its parent, or its zygote's."""
    return server in (info["parent"], parent_of(info["parent"]))


def test_light_modules_are_imported_once_in_their_zygote(engine: Engine,
                                                         tmp_path: Path) -> None:
    assert engine.server is not None
    infos = []
    for i in range(4):
        out = tmp_path / f"w{i}.json"
        run_one(engine, f"w{i}", f"{tmp_path}/light.py:where", {"out": str(out)})
        infos.append(json.loads(out.read_text()))
        time.sleep(0.2)  # let the zygote import the module
    last = infos[-1]
    assert last["imported_by"] == last["parent"] != last["me"]  # the zygote
    assert parent_of(last["parent"]) == engine.server.pid
    assert infos[-2]["imported_by"] == last["imported_by"]  # one zygote serves them all


def test_thread_pool_modules_serve_one_thread_tasks_from_the_server(engine: Engine,
                                                                     tmp_path: Path) -> None:
    assert engine.server is not None
    infos = []
    for i in range(3):
        out = tmp_path / f"h{i}.json"
        result = run_one(engine, f"h{i}", f"{tmp_path}/heavy.py:where", {"out": str(out)})
        assert result.exit_code == 0, (tmp_path / f"run/tasks/h{i}/stderr").read_text()
        infos.append(json.loads(out.read_text()))
        time.sleep(0.3)  # let the zygote import the module
    assert infos[0]["imported_by"] == infos[0]["me"] and infos[0]["omp"] == "1"
    zygote = infos[-1]["imported_by"]
    assert zygote == infos[-1]["parent"] and parent_of(zygote) == engine.server.pid
    assert len(os.listdir(f"/proc/{zygote}/task")) == 1  # numpy, sized to one thread
    assert "openblas" in Path(f"/proc/{zygote}/maps").read_text()
    assert "openblas" not in Path(f"/proc/{engine.server.pid}/maps").read_text()
    if len(os.sched_getaffinity(0)) >= 2:  # two threads: forked from the server, which
        # has no pool, and imports numpy itself under its own thread variables
        out = tmp_path / "two.json"
        result = run_one(engine, "h2c", f"{tmp_path}/heavy.py:where", {"out": str(out)},
                         cores=[0, 1])
        assert result.exit_code == 0, (tmp_path / "run/tasks/h2c/stderr").read_text()
        info = json.loads(out.read_text())
        assert info["imported_by"] == info["me"] and info["omp"] == "2"
        assert info["parent"] == engine.server.pid


def test_modules_that_start_threads_are_imported_by_each_task(engine: Engine,
                                                              tmp_path: Path) -> None:
    assert engine.server is not None
    for i in range(3):
        out = tmp_path / f"t{i}.json"
        result = run_one(engine, f"t{i}", f"{tmp_path}/threaded.py:where", {"out": str(out)})
        assert result.exit_code == 0, (tmp_path / f"run/tasks/t{i}/stderr").read_text()
        info = json.loads(out.read_text())
        assert info["imported_by"] == info["me"]
        time.sleep(0.3)
    assert len(os.listdir(f"/proc/{engine.server.pid}/task")) == 1


def test_server_death_loses_its_tasks_and_restarts(engine: Engine, tmp_path: Path) -> None:
    old = engine.server
    assert old is not None
    proc = engine.start("d1", {"kind": "python", "target": f"{tmp_path}/light.py:sleepy"}, {},
                        [0])
    os.kill(old.pid, signal.SIGKILL)
    end = time.monotonic() + 10
    exits: list[Exit] = []
    while not exits and time.monotonic() < end:
        exits = engine.reap()
        time.sleep(0.01)
    assert [e.reason for e in exits] == ["lost: the fork server died"]
    assert engine.server is not None and engine.server is not old
    out = tmp_path / "fresh.json"  # started before the new server is ready: fresh path
    run_one(engine, "d2", f"{tmp_path}/light.py:where", {"out": str(out)})
    assert json.loads(out.read_text())["parent"] == os.getpid()
    assert engine.server.wait_ready()
    run_one(engine, "d3", f"{tmp_path}/light.py:where", {"out": str(out)})
    assert served_by(json.loads(out.read_text()), engine.server.pid)
    time.sleep(0.1)
    assert not os.path.exists(f"/proc/{proc.pid}") or _zombie(proc.pid)


def test_a_process_with_threads_probes_heavy() -> None:
    import threading

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert probe_code() == PROBE_HEAVY
    finally:
        stop.set()
        thread.join()


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_every_exit_is_reported_when_starts_and_exits_interleave(engine: Engine,
                                                                   tmp_path: Path) -> None:
    target = f"{tmp_path}/light.py:where"
    cpus = sorted(os.sched_getaffinity(0))
    for i in range(30):  # exits arrive while later starts wait for their answers
        engine.start(f"b{i}", {"kind": "python", "target": target},
                     {"out": str(tmp_path / f"b{i}.json")}, [cpus[i % len(cpus)]])
    seen: set[str] = set()
    end = time.monotonic() + 30
    while len(seen) < 30 and time.monotonic() < end:
        seen |= {e.execution for e in engine.reap()}
        time.sleep(0.01)
    assert seen == {f"b{i}" for i in range(30)} and not engine.tasks


def test_a_request_larger_than_the_read_buffer_still_starts(engine: Engine,
                                                           tmp_path: Path) -> None:
    from odop.engine.forkserver import READ_BUFFER_BYTES

    (tmp_path / "big.py").write_text("def size(out, blob):\n"
                                     "    open(out, 'w').write(str(len(blob)))\n")
    blob = "x" * (3 * READ_BUFFER_BYTES)
    for i in range(2):  # the grown buffer serves the next request too
        out = tmp_path / f"big{i}.txt"
        args = {"out": str(out), "blob": blob}
        result = run_one(engine, f"b{i}", f"{tmp_path}/big.py:size", args)
        assert result.exit_code == 0, (tmp_path / f"run/tasks/b{i}/stderr").read_text()
        assert out.read_text() == str(len(blob))


def test_a_warmed_module_serves_even_the_first_task(engine: Engine, tmp_path: Path) -> None:
    assert engine.server is not None
    engine.warm([f"{tmp_path}/light.py:where"])
    time.sleep(2.0)  # the zygote imports it (idle priority)
    out = tmp_path / "first.json"
    run_one(engine, "f1", f"{tmp_path}/light.py:where", {"out": str(out)})
    info = json.loads(out.read_text())
    assert info["imported_by"] == info["parent"] != info["me"]
    assert parent_of(info["parent"]) == engine.server.pid
