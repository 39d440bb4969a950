"""A task's memory maximum on real processes, where no cgroup is used: sampled by the
engine (the default without a writable memory cgroup) and, as a last resort, RLIMIT_DATA
with a margin. Both start paths: forked by the fork server, and a fresh interpreter.

The bar (issue 18): a task that stays under its declared maximum never fails for memory
(under the old RLIMIT_DATA = max, 50 MB of numpy in a 100M maximum failed at 23 MB of RSS);
one that goes over is killed with a reason naming the memory, the max and how."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.engine.engine import Engine, Exit, rlimit_for
from odop.engine.memwatch import MemoryWatch, process_memory, resident, tree_pids
from tests.conftest import wait_exit

TASKS = '''
import os, time
def fifty():
    import numpy as np
    block = np.ones(50_000_000 // 8)  # 50 MB, touched
    time.sleep(0.6)                   # held over two samples
    assert block.sum() == block.size
def hog():
    blocks = []
    while True:
        blocks.append(bytearray(10**7))
        time.sleep(0.01)
def family():
    """A parent holding little whose child holds 150 MB: the tree is what counts."""
    if os.fork() == 0:
        block = bytearray(150 * 10**6)
        time.sleep(60)
        os._exit(0)
    os.wait()
'''
MAX = 100 * 10**6  # memory = {min = "10M", max = "100M"}


@pytest.fixture(params=["forked", "fresh"])
def start_path(request: pytest.FixtureRequest) -> bool:
    return request.param == "forked"


def make_engine(tmp_path: Path, forked: bool, memory_bound: str) -> Engine:
    (tmp_path / "mem.py").write_text(TASKS)
    eng = Engine(tmp_path / "run", grace_s=0.5, cwd=str(tmp_path), fork_server=forked,
                 memory_bound=memory_bound)
    if forked:
        assert eng.server is not None and eng.server.wait_ready()
    return eng


@pytest.fixture
def sampled(tmp_path: Path, start_path: bool) -> Iterator[Engine]:
    eng = make_engine(tmp_path, start_path, "sample")
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


@pytest.fixture
def rlimited(tmp_path: Path, start_path: bool) -> Iterator[Engine]:
    eng = make_engine(tmp_path, start_path, "rlimit")
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


def run(engine: Engine, tmp_path: Path, func: str, timeout_s: float = 60.0) -> Exit:
    spec = {"kind": "python", "target": f"{tmp_path}/mem.py:{func}", "memory_max": MAX}
    engine.start(func, spec, {}, [0])
    return wait_exit(engine, timeout_s)


def stderr(tmp_path: Path, execution: str) -> str:
    return (tmp_path / "run/tasks" / execution / "stderr").read_text()


def test_sampled_task_under_its_max_runs(sampled: Engine, tmp_path: Path) -> None:
    assert sampled.cgroups is None
    result = run(sampled, tmp_path, "fifty")
    assert result.exit_code == 0 and result.reason == "ok", stderr(tmp_path, "fifty")


def test_sampled_task_over_its_max_is_killed_with_the_reason(sampled: Engine,
                                                             tmp_path: Path) -> None:
    result = run(sampled, tmp_path, "hog")
    assert result.signal == signal.SIGKILL, result
    words = result.reason.split()
    held = float(words[words.index("held") + 1])
    assert held > 100.0, result.reason  # MB
    assert result.reason == (f"out of memory: held {held:.1f} MB, over its max of 100.0 MB "
                             "(sampled every 0.25 s: no writable memory cgroup)")


def test_sampled_bound_counts_the_whole_tree(sampled: Engine, tmp_path: Path) -> None:
    result = run(sampled, tmp_path, "family")
    assert result.signal == signal.SIGKILL and "over its max of 100.0 MB" in result.reason


def test_rlimit_is_a_margin_above_the_max(rlimited: Engine, tmp_path: Path) -> None:
    """The last resort leaves a task's reserved address space room: 50 MB in 100M runs;
    a task allocating without end fails at twice the max plus 1 GiB, and says so."""
    result = run(rlimited, tmp_path, "fifty")
    assert result.exit_code == 0, stderr(tmp_path, "fifty")
    result = run(rlimited, tmp_path, "hog")
    assert result.exit_code == 97 and "MemoryError" in stderr(tmp_path, "hog")
    assert result.reason == ("out of memory: an allocation failed at its limit (max 100.0 MB; "
                             "RLIMIT_DATA of 1273.7 MB per process: twice the max plus 1 GiB)")
    assert rlimit_for(MAX) == 2 * MAX + 2**30


def test_memory_of_a_process_counts_what_it_touched() -> None:
    """PSS of anonymous memory: a 50 MB block counts once touched, not before."""
    import os

    before = process_memory(os.getpid())
    block = bytearray(50 * 10**6)
    assert process_memory(os.getpid()) - before > 45 * 10**6
    assert resident(os.getpid()) >= process_memory(os.getpid())  # RSS bounds it from above
    del block
    assert process_memory(2**22 + 1) == 0 and resident(2**22 + 1) == 0  # no such process


@pytest.mark.parametrize("swapless", [True, False])
def test_watch_flags_a_tree_over_its_max_only(swapless: bool) -> None:
    """With or without the RSS shortcut (a node without swap), a child holding 150 MB is
    over a 100M max, and under a 200M one."""
    child = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                              "block = bytearray(150 * 10**6)\nprint(flush=True)\n"
                              "time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline()
        watch = MemoryWatch(every_s=0.0, swapless=swapless)
        watch.add("big", child.pid, 100 * 10**6)
        watch.add("roomy", child.pid, 200 * 10**6)
        [(name, held)] = watch.over()
        assert name == "big" and 150 * 10**6 < held < 200 * 10**6
        assert tree_pids(child.pid) == [child.pid]
    finally:
        child.kill()
        child.wait()


def test_an_unknown_memory_bound_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="memory_bound 'cgroups' is unknown; allowed: auto, "
                                         "sample, rlimit"):
        Engine(tmp_path / "run", fork_server=False, memory_bound="cgroups")
