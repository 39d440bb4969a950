from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from odop_obs.errors import ObsConfigError, UnknownProcessError
from odop_obs.samplers.process import ProcessSampler

BUSY = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass\n"
SPAWN = (
    "import subprocess, sys\n"
    "subprocess.run([sys.executable, '-c', {code!r}])\n"
)


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_watch_self_reports_fields() -> None:
    s = ProcessSampler()
    s.watch(os.getpid(), "odop", "me")
    section = s.sample(0.0, 1.0, {})
    (row,) = section["watched"]
    assert row["pid"] == os.getpid() and row["role"] == "odop" and row["label"] == "me"
    assert row["rss"] > 0 and row["threads"] >= 1 and row["procs"] == 1
    assert row["state"] in ("R", "S") and row["cpu_s"] > 0
    assert row["core"] in row["affinity"] and row["affinity"] == sorted(os.sched_getaffinity(0))
    assert section["roles"]["odop"]["count"] == 1 and section["exited"] == []


def test_exited_process_is_reported_once_then_forgotten() -> None:
    s = ProcessSampler()
    proc = _python(BUSY.format(s=0.2))
    s.watch(proc.pid, "task", "busy")
    proc.wait()
    first = s.sample(0.0, 1.0, {})
    assert first["watched"] == []
    assert [e["pid"] for e in first["exited"]] == [proc.pid]
    assert s.sample(0.0, 1.0, {})["exited"] == [] and s.pids() == {}


def test_zombie_counts_as_exited() -> None:
    s = ProcessSampler()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    s.watch(proc.pid, "task")  # before it exits: it waits for its stdin to close
    assert proc.stdin is not None
    proc.stdin.close()
    deadline = time.monotonic() + 10
    while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:  # exited, not reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    section = s.sample(0.0, 1.0, {})
    assert [e["pid"] for e in section["exited"]] == [proc.pid]
    proc.wait()


def test_tree_counts_children_cpu() -> None:
    s = ProcessSampler()
    parent = _python(SPAWN.format(code=BUSY.format(s=0.4)))
    s.watch(parent.pid, "task", tree=True)
    seen_procs = 1
    cpu_s = 0.0
    while parent.poll() is None:
        section = s.sample(0.0, 0.05, {})
        for row in section["watched"]:
            seen_procs, cpu_s = max(seen_procs, row["procs"]), row["cpu_s"]
        time.sleep(0.05)
    assert seen_procs == 2  # the parent and its busy child
    assert cpu_s >= 0.2  # the child's CPU time is counted in the tree


def test_unwatch_and_errors() -> None:
    s = ProcessSampler()
    s.watch(os.getpid())
    s.unwatch(os.getpid())
    s.unwatch(12345678)
    assert s.pids() == {}
    with pytest.raises(UnknownProcessError, match="99999999"):
        s.watch(99999999)
    with pytest.raises(ObsConfigError, match="role"):
        s.watch(os.getpid(), role="boss")


def test_tree_total_dip_is_not_counted_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    # 1.0 at watch; 2.0; a dip to 1.5 (child exited, not yet reaped); 2.5 once reaped
    readings = iter([1.0, 2.0, 1.5, 2.5])
    monkeypatch.setattr("odop_obs.samplers.process._totals", lambda t, st: (next(readings), 0.0, 2))
    s = ProcessSampler()
    s.watch(os.getpid(), "task", tree=True)
    cpus = [s.sample(0.0, 1.0, {})["watched"][0]["cpu"] for _ in range(3)]
    assert cpus == [1.0, 0.0, 0.5]


def test_watch_unwatch_from_another_thread_leaks_nothing() -> None:
    import threading

    s = ProcessSampler()
    fds_before = len(os.listdir("/proc/self/fd"))
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            s.watch(os.getpid(), "odop")
            s.unwatch(os.getpid())

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(200):
            section = s.sample(0.0, 1.0, {})
            assert section["exited"] == []  # an unwatched pid is not reported as exited
    finally:
        stop.set()
        thread.join()
    s.close()
    assert len(os.listdir("/proc/self/fd")) == fds_before


def test_rows_split_user_system_and_follow_grandchildren() -> None:
    grandchild = BUSY.format(s=0.3)
    child = SPAWN.format(code=grandchild)
    parent = _python(SPAWN.format(code=child))  # parent -> child -> busy grandchild
    s = ProcessSampler()
    s.watch(parent.pid, "task", "reduce", tree=True)
    procs, last = 1, None
    while parent.poll() is None:
        section = s.sample(0.0, 0.05, {})
        for row in section["watched"]:
            procs, last = max(procs, row["procs"]), row
        time.sleep(0.05)
    assert procs == 3 and last is not None
    assert last["user_s"] + last["system_s"] == pytest.approx(last["cpu_s"], abs=1e-3)
    assert last["cpu_s"] >= 0.15 and last["cpu_pct"] == pytest.approx(last["cpu"] * 100, abs=0.01)
    for key in ("ppid", "name", "ctx_vol", "ctx_invol", "read_bytes", "write_bytes", "cpu_num"):
        assert key in last
    s.close()


def test_groups_sum_per_label() -> None:
    sleepers = [_python("import time; time.sleep(30)") for _ in range(2)]
    s = ProcessSampler()
    try:
        for p in sleepers:
            s.watch(p.pid, "sim", "rank")
        s.watch(os.getpid(), "odop", "odop")
        section = s.sample(0.0, 1.0, {})
        groups = s.top_level(section)["groups"]
        assert groups["rank"]["n"] == 2 and groups["odop"]["n"] == 1
        assert groups["rank"]["rss"] == sum(r["rss"] for r in section["watched"]
                                            if r["label"] == "rank")
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
        s.close()
