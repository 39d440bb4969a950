"""Memory bounds through cgroups: v2 and v1 against fake cgroup trees (the interface
files only), and v1 for real where this host lets the engine write one (tests/
test_engine_memory.py has the sampled and rlimit bounds)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.engine import cgroup
from odop.engine.cgroup import CgroupTree, CgroupV1
from odop.engine.engine import Engine, Exit

MOUNTINFO_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
MOUNTINFO_V1 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw\n"
TASKS = '''
def small():
    return None
def killed():
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
'''
MOUNTINFO_V1_MEMORY = ("35 31 0:32 /job /sys/fs/cgroup/memory rw,relatime - cgroup cgroup "
                       "rw,memory\n")
PROC_CGROUP_V1 = "4:memory:/job/step\n3:cpuset:/\n0::/\n"


def fake_tree(root: Path, *, controllers: str = "cpu memory pids", procs: str = "") -> Path:
    """A delegated cgroup folder as the kernel shows it (interface files only)."""
    own = root / "user.slice" / "job"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text(controllers + "\n")
    (own / "cgroup.subtree_control").write_text("\n")
    (own / "cgroup.procs").write_text(procs or f"{os.getpid()}\n")
    return own


def detect(root: Path, mountinfo: str = MOUNTINFO_V2) -> CgroupTree | None:
    return CgroupTree.detect(root, mountinfo=mountinfo, own="/user.slice/job")


def test_detect_needs_cgroup2_memory_and_no_other_process(tmp_path: Path) -> None:
    fake_tree(tmp_path)
    assert detect(tmp_path, MOUNTINFO_V1) is None
    tree = detect(tmp_path)
    assert tree is not None and tree.base.name == f"odop-{os.getpid()}"
    own = tmp_path / "user.slice/job"
    assert (own / f"odop-engine-{os.getpid()}/cgroup.procs").read_text() == str(os.getpid())
    assert (own / "cgroup.subtree_control").read_text() == "+memory"
    other = tmp_path / "b"
    fake_tree(other, controllers="cpu pids")
    assert detect(other) is None
    crowded = tmp_path / "c"
    fake_tree(crowded, procs="1\n2\n")
    assert detect(crowded) is None


def test_real_host_without_delegated_cgroup2_uses_rlimits() -> None:
    if Path("/proc/self/mountinfo").read_text().find(" /sys/fs/cgroup ") < 0:
        pytest.skip("no /sys/fs/cgroup mount")
    tree = CgroupTree.detect()
    assert tree is None or tree.base.exists()


@pytest.fixture(params=["forked", "fresh"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "bounded.py").write_text(TASKS)
    fake_tree(tmp_path / "cg")
    tree = detect(tmp_path / "cg")
    forked = request.param == "forked"
    eng = Engine(tmp_path / "run", cwd=str(tmp_path), fork_server=forked, cgroups=tree)
    if forked:
        assert eng.server is not None and eng.server.wait_ready()
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


def wait_exit(engine: Engine) -> Exit:
    end = time.monotonic() + 30
    while time.monotonic() < end:
        exits = engine.reap()
        if exits:
            return exits[0]
        time.sleep(0.01)
    raise AssertionError("no exit")


def test_task_joins_its_cgroup_and_oom_is_recorded(engine: Engine, tmp_path: Path) -> None:
    tree = engine.cgroups
    assert tree is not None
    folder = tree.base / "m1"
    folder.mkdir()
    (folder / "memory.swap.max").write_text("max\n")
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    spec = {"kind": "python", "target": f"{tmp_path}/bounded.py:killed", "memory_max": 2**28}
    proc = engine.start("m1", spec, {}, [0])
    assert (folder / "memory.max").read_text() == str(2**28)
    assert (folder / "memory.swap.max").read_text() == "0"
    result = wait_exit(engine)
    assert (folder / "cgroup.procs").read_text() == str(proc.pid)
    assert result.reason == ("out of memory: reached its max of 268.4 MB "
                             "(memory cgroup v2: killed by the kernel)")
    assert str(folder) in tree.pending  # a fake folder keeps its files; the kernel's would go


def test_a_task_that_ends_well_is_ok_whatever_its_cgroup_saw(engine: Engine,
                                                             tmp_path: Path) -> None:
    """The kernel may kill one child of a task for memory while the task copes and ends
    well: that is no failure."""
    tree = engine.cgroups
    assert tree is not None
    (tree.base / "m3").mkdir()
    (tree.base / "m3/memory.events").write_text("oom 1\noom_kill 1\n")
    spec = {"kind": "python", "target": f"{tmp_path}/bounded.py:small", "memory_max": 2**28}
    engine.start("m3", spec, {}, [0])
    assert wait_exit(engine).reason == "ok"


def test_unbounded_tasks_get_no_cgroup(engine: Engine, tmp_path: Path) -> None:
    spec = {"kind": "python", "target": f"{tmp_path}/bounded.py:small"}
    engine.start("m2", spec, {}, [0])
    assert wait_exit(engine).reason == "ok"
    assert engine.cgroups is not None and not (engine.cgroups.base / "m2").exists()


def fake_v1(root: Path) -> Path:
    """A v1 memory hierarchy mounted at /sys/fs/cgroup/memory whose root is /job, with this
    process in /job/step (interface files only)."""
    here = root / "sys/fs/cgroup/memory/step"
    here.mkdir(parents=True)
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cgroup.procs"):
        (here / name).write_text("0\n")
    return here


def test_v1_is_found_through_mountinfo_and_proc_cgroup(tmp_path: Path) -> None:
    here = fake_v1(tmp_path)
    (here / f"odop-{2**22 + 1}").mkdir()  # left by an engine that is gone (no such pid)
    tree = CgroupV1.detect(tmp_path, mountinfo=MOUNTINFO_V1_MEMORY, own="/job/step")
    assert tree is not None and tree.base == here / f"odop-{os.getpid()}"
    assert not (here / f"odop-{2**22 + 1}").exists()  # swept
    assert CgroupV1.detect(tmp_path, mountinfo=MOUNTINFO_V1, own="/job/step") is None
    assert CgroupV1.detect(tmp_path, mountinfo=MOUNTINFO_V1_MEMORY, own="/other") is None
    assert cgroup._own_v1(PROC_CGROUP_V1) == "/job/step"
    (tree.base / "e1").mkdir()  # the kernel makes a new cgroup's interface files
    (tree.base / "e1/memory.memsw.limit_in_bytes").write_text("max\n")
    folder = Path(tree.create("e1", 10**8))
    assert (folder / "memory.limit_in_bytes").read_text() == str(10**8)
    assert (folder / "memory.memsw.limit_in_bytes").read_text() == str(10**8)
    (folder / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    assert tree.oom_killed("e1") and not tree.oom_killed("e2")


def real_v1() -> cgroup.CgroupV1 | None:
    tree = CgroupV1.detect()
    if tree is None:
        pytest.skip("this host lets the engine write no cgroup v1 memory controller")
    return tree


def test_real_v1_kills_a_task_past_its_max_and_keeps_one_under_it(tmp_path: Path) -> None:
    """On a host with a writable v1 memory controller (this one, as root), the kernel
    holds the bound: 50 MB of numpy in a 100M maximum runs; a task allocating without end
    is killed, recorded with its maximum and how it was enforced; folders are removed."""
    tree = real_v1()
    (tmp_path / "mem.py").write_text(MEMORY_TASKS)
    eng = Engine(tmp_path / "run", cwd=str(tmp_path), fork_server=False, cgroups=tree)
    try:
        target = f"{tmp_path}/mem.py:"
        eng.start("fits", {"kind": "python", "target": target + "fifty", "memory_max": 10**8},
                  {}, [0])
        assert wait_exit(eng).reason == "ok", (tmp_path / "run/tasks/fits/stderr").read_text()
        eng.start("hog", {"kind": "python", "target": target + "hog", "memory_max": 10**8},
                  {}, [0])
        result = wait_exit(eng)
        assert result.signal == 9 and result.reason == (
            "out of memory: reached its max of 100.0 MB (memory cgroup v1: killed by the kernel)")
        assert not (tree.base / "fits").exists()
    finally:
        eng.stop_all("test over", wait_s=0.5)
        eng.close()
    assert not tree.base.exists()


MEMORY_TASKS = '''
def fifty():
    import numpy as np
    block = np.ones(50_000_000 // 8)  # 50 MB, touched
    assert block.sum() == block.size
def hog():
    import time
    blocks = []
    while True:
        blocks.append(bytearray(10**7))
        time.sleep(0.01)
'''
