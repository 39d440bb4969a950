"""Memory bounds: cgroup v2 against a fake cgroup tree (this host has v1), rlimit for real."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.engine.cgroup import CgroupTree
from odop.engine.engine import Engine, Exit

MOUNTINFO_V2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
MOUNTINFO_V1 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs rw\n"
TASKS = '''
def small():
    return None
'''


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
    spec = {"kind": "python", "target": f"{tmp_path}/bounded.py:small", "memory_max": 2**28}
    proc = engine.start("m1", spec, {}, [0])
    assert (folder / "memory.max").read_text() == str(2**28)
    assert (folder / "memory.swap.max").read_text() == "0"
    result = wait_exit(engine)
    assert (folder / "cgroup.procs").read_text() == str(proc.pid)
    assert result.reason == "out of memory (cgroup)"
    assert str(folder) in tree.pending  # a fake folder keeps its files; the kernel's would go


def test_unbounded_tasks_get_no_cgroup(engine: Engine, tmp_path: Path) -> None:
    spec = {"kind": "python", "target": f"{tmp_path}/bounded.py:small"}
    engine.start("m2", spec, {}, [0])
    assert wait_exit(engine).reason == "ok"
    assert engine.cgroups is not None and not (engine.cgroups.base / "m2").exists()
