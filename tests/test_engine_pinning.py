"""Every thread of a task's process tree stays inside its grant, before and after a repin."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from odop.engine.engine import Engine
from odop.engine.process import group_pids

TREE = '''
import subprocess, sys, threading, time
CHILD = "import threading, time\\n" \\
        "ts = [threading.Thread(target=time.sleep, args=(60,)) for _ in range(3)]\\n" \\
        "[t.start() for t in ts]\\nprint('up', flush=True)\\ntime.sleep(60)\\n"
def tree(ready):
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE)
    child.stdout.readline()
    for _ in range(4):
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    open(ready, "w").write("up")
    time.sleep(60)
'''


@pytest.fixture(autouse=True)
def tree_module(tmp_path: Path) -> None:
    (tmp_path / "tree.py").write_text(TREE)


def allowed_lists(pgid: int) -> dict[tuple[int, int], str]:
    """``(pid, tid) -> Cpus_allowed_list`` for every thread of process group ``pgid``."""
    out = {}
    for pid in group_pids(pgid):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/status") as fh:
                line = next(x for x in fh if x.startswith("Cpus_allowed_list"))
            out[(pid, int(tid))] = line.split(":")[1].strip()
    return out


def test_every_thread_of_the_tree_is_pinned_and_repinned(engine: Engine, tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    first, other = [cpus[-1]], [cpus[0]]
    ready = tmp_path / "ready"
    proc = engine.start("t1", {"kind": "python", "target": f"{tmp_path}/tree.py:tree"},
                        {"ready": str(ready)}, first)
    end = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < end:
        time.sleep(0.02)
    before = allowed_lists(proc.pid)
    assert len({pid for pid, _ in before}) == 2 and len(before) >= 9
    assert set(before.values()) == {str(first[0])}
    proc.repin(other)
    after = allowed_lists(proc.pid)
    assert after.keys() == before.keys() and set(after.values()) == {str(other[0])}
    assert proc.cores == other
