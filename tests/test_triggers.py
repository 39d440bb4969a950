"""Triggers on real files in tmp_path, with inotify and with polling; restarts."""

from __future__ import annotations

import os
import select
import sqlite3
import struct
import time
from pathlib import Path

import pytest

from odop.tasks.triggers import (
    EveryTrigger,
    FileTrigger,
    FolderTrigger,
    LineTrigger,
    MemoryTriggerState,
    SQLiteTriggerState,
    make_trigger,
    normalize_trigger,
)
from odop.tasks.triggers.inotify import IN_CLOSE_WRITE, Inotify, available, parse_events
from odop.tasks.triggers.watchset import TriggerSet

MODES = [pytest.param(True, id="inotify", marks=pytest.mark.skipif(
    not available(), reason="no inotify here")), pytest.param(False, id="polling")]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "state.db")


def paths(subs: list[dict]) -> list[str]:
    return sorted(os.path.basename(s["path"]) for s in subs)


def write(path: Path, data: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


def test_parse_events_and_real_inotify(tmp_path: Path) -> None:
    raw = struct.pack("iIII", 3, IN_CLOSE_WRITE, 0, 8) + b"a.npy\0\0\0"
    raw += struct.pack("iIII", 3, 0x400, 0, 0)
    assert [tuple(e) for e in parse_events(raw)] == [(3, IN_CLOSE_WRITE, "a.npy"), (3, 0x400, "")]
    if not available():
        pytest.skip("no inotify here")
    with Inotify() as ino:
        wd = ino.add_watch(str(tmp_path), IN_CLOSE_WRITE)
        assert ino.read() == []
        write(tmp_path / "f.txt")
        assert select.select([ino], [], [], 1.0)[0]
        assert [(e.wd, e.name) for e in ino.read()] == [(wd, "f.txt")]
        with pytest.raises(OSError):
            ino.add_watch(str(tmp_path / "missing"), IN_CLOSE_WRITE)


@pytest.mark.parametrize("inotify", MODES)
def test_file_created_once_and_after_restart(tmp_path: Path, db: str, inotify: bool) -> None:
    snaps = tmp_path / "snaps"
    write(snaps / "s0.npy")
    trig = FileTrigger("reduce", SQLiteTriggerState(db), "snaps/*.npy", base_dir=str(tmp_path),
                       use_inotify=inotify)
    assert trig.uses_inotify is inotify and (trig.fileno() is not None) is inotify
    assert paths(trig.poll(0.0)) == ["s0.npy"]  # present before the start
    write(snaps / "s1.npy")
    write(snaps / "s1.txt")
    write(snaps / ".s2.npy")  # hidden: a writer's temporary name
    if inotify:
        assert select.select([trig], [], [], 1.0)[0]
    got = trig.poll(1.0)
    assert got == [{"path": str(snaps / "s1.npy")}]
    assert trig.poll(2.0) == []
    write(snaps / "s1.npy", "changed")  # created-only: a change is not a new submission
    assert trig.poll(3.0) == []
    trig.close()
    # restart: nothing already submitted comes again; what appeared meanwhile does
    write(snaps / "s3.npy")
    trig = FileTrigger("reduce", SQLiteTriggerState(db), "snaps/*.npy", base_dir=str(tmp_path),
                       use_inotify=inotify)
    assert paths(trig.poll(4.0)) == ["s3.npy"]
    assert trig.poll(5.0) == []
    trig.close()


@pytest.mark.parametrize("inotify", MODES)
def test_file_changed_events(tmp_path: Path, db: str, inotify: bool) -> None:
    write(tmp_path / "a.dat", "1")
    trig = FileTrigger("t", SQLiteTriggerState(db), str(tmp_path / "*.dat"),
                       events=["changed"], use_inotify=inotify)
    assert trig.poll(0.0) == []  # baseline only
    write(tmp_path / "a.dat", "22")
    assert paths(trig.poll(1.0)) == ["a.dat"]
    write(tmp_path / "b.dat", "new")
    assert trig.poll(2.0) == []
    trig.close()
    write(tmp_path / "a.dat", "333")  # changed while odop was down
    trig = FileTrigger("t", SQLiteTriggerState(db), str(tmp_path / "*.dat"),
                       events=["created", "changed"], use_inotify=inotify)
    assert paths(trig.poll(3.0)) == ["a.dat"]
    trig.close()


@pytest.mark.parametrize("inotify", MODES)
def test_file_deleted_and_recreated_counts_again(tmp_path: Path, inotify: bool) -> None:
    trig = FileTrigger("t", MemoryTriggerState(), str(tmp_path / "*.h5"), use_inotify=inotify)
    write(tmp_path / "a.h5", "one")
    assert paths(trig.poll(0.0)) == ["a.h5"]
    (tmp_path / "a.h5").unlink()
    assert trig.poll(1.0) == []
    write(tmp_path / "a.h5", "two")
    assert paths(trig.poll(2.0)) == ["a.h5"]
    trig.close()


@pytest.mark.parametrize("inotify", MODES)
def test_file_settle(tmp_path: Path, inotify: bool) -> None:
    trig = FileTrigger("t", MemoryTriggerState(), str(tmp_path / "*.npy"), settle_s=1.0,
                       use_inotify=inotify)
    assert trig.poll(0.0) == []
    write(tmp_path / "a.npy", "part")
    assert trig.poll(10.0) == []
    assert trig.next_due(10.0) == (11.0 if inotify else 10.0 + trig.poll_interval_s)
    write(tmp_path / "a.npy", "partial, then whole")  # still being written: the clock restarts
    assert trig.poll(10.5) == []
    assert trig.poll(11.2) == []
    assert paths(trig.poll(11.6)) == ["a.npy"]
    assert trig.poll(20.0) == []
    trig.close()


@pytest.mark.parametrize("inotify", MODES)
def test_folder_that_does_not_exist_yet(tmp_path: Path, inotify: bool) -> None:
    trig = FileTrigger("t", MemoryTriggerState(), "deep/er/*.out", base_dir=str(tmp_path),
                       use_inotify=inotify)
    assert trig.poll(0.0) == []
    (tmp_path / "deep").mkdir()
    assert trig.poll(1.0) == []
    write(tmp_path / "deep" / "er" / "x.out")
    assert paths(trig.poll(2.0)) == ["x.out"]
    write(tmp_path / "deep" / "er" / "y.out")
    assert paths(trig.poll(3.0)) == ["y.out"]
    trig.close()


def test_glob_with_folder_wildcards_polls(tmp_path: Path) -> None:
    trig = FileTrigger("t", MemoryTriggerState(), "runs/*/out.npy", base_dir=str(tmp_path))
    assert not trig.uses_inotify and trig.next_due(5.0) == 5.0 + trig.poll_interval_s
    write(tmp_path / "runs" / "r1" / "out.npy")
    write(tmp_path / "runs" / "r2" / "other.npy")
    assert trig.poll(0.0) == [{"path": str(tmp_path / "runs" / "r1" / "out.npy")}]


@pytest.mark.parametrize("inotify", MODES)
def test_folder_trigger(tmp_path: Path, db: str, inotify: bool) -> None:
    (tmp_path / "out").mkdir()
    trig = FolderTrigger("f", SQLiteTriggerState(db), "out/run_*", base_dir=str(tmp_path),
                         use_inotify=inotify)
    assert trig.poll(0.0) == []
    (tmp_path / "out" / "run_1").mkdir()
    write(tmp_path / "out" / "run_file")  # a file is not a folder
    assert trig.poll(1.0) == [{"path": str(tmp_path / "out" / "run_1")}]
    write(tmp_path / "out" / "run_1" / "inside.txt")
    assert trig.poll(2.0) == []
    trig.close()
    (tmp_path / "out" / "run_2").mkdir()
    trig = FolderTrigger("f", SQLiteTriggerState(db), "out/run_*", base_dir=str(tmp_path),
                         use_inotify=inotify)
    assert paths(trig.poll(3.0)) == ["run_2"]
    trig.close()


def lines(subs: list[dict]) -> list[tuple[int, str]]:
    return [(s["lineno"], s["line"]) for s in subs]


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


@pytest.mark.parametrize("inotify", MODES)
def test_lines_exactly_once_across_restart(tmp_path: Path, db: str, inotify: bool) -> None:
    log = tmp_path / "log.txt"

    def trigger() -> LineTrigger:
        return LineTrigger("lines", SQLiteTriggerState(db), "log.txt", base_dir=str(tmp_path),
                           use_inotify=inotify)

    trig = trigger()
    assert trig.poll(0.0) == []  # no file yet
    append(log, b"a\nb\r\npart")
    subs = trig.poll(1.0)
    assert lines(subs) == [(1, "a"), (2, "b")] and subs[0]["path"] == str(log)
    append(log, b"ial\n")
    assert lines(trig.poll(2.0)) == [(3, "partial")]
    append(log, b"half")
    assert trig.poll(3.0) == []
    trig.close()  # restart with a partial line pending
    append(log, b" done\nc\n")
    trig = trigger()
    assert lines(trig.poll(4.0)) == [(4, "half done"), (5, "c")]
    assert trig.poll(5.0) == []
    trig.close()
    trig = trigger()
    assert trig.poll(6.0) == []
    trig.close()


@pytest.mark.parametrize("inotify", MODES)
def test_lines_truncation_and_rotation(tmp_path: Path, inotify: bool) -> None:
    log = tmp_path / "log.txt"
    append(log, b"one\ntwo\n")
    trig = LineTrigger("l", MemoryTriggerState(), str(log), use_inotify=inotify)
    assert lines(trig.poll(0.0)) == [(1, "one"), (2, "two")]
    os.truncate(log, 0)  # copytruncate
    append(log, b"x\n")
    assert lines(trig.poll(1.0)) == [(1, "x")]
    os.truncate(log, 0)  # truncated, then grown past the old offset before the next poll
    append(log, b"longer than before\n")
    assert lines(trig.poll(2.0)) == [(1, "longer than before")]
    os.rename(log, tmp_path / "log.txt.1")  # rotation; the writer still appends to the old file
    append(tmp_path / "log.txt.1", b"late\nlast-no-newline")
    append(log, b"new\n")
    assert lines(trig.poll(3.0)) == [(2, "late"), (3, "last-no-newline"), (1, "new")]
    assert trig.poll(4.0) == []
    trig.close()


def test_lines_without_commit_are_delivered_again(tmp_path: Path, db: str) -> None:
    log = tmp_path / "log.txt"
    append(log, b"a\nb\n")
    trig = LineTrigger("l", SQLiteTriggerState(db), str(log), auto_commit=False)
    assert len(trig.poll(0.0)) == 2
    # the process dies before the caller queued them and committed: nothing is lost
    trig2 = LineTrigger("l", SQLiteTriggerState(db), str(log), auto_commit=False)
    assert lines(trig2.poll(0.0)) == [(1, "a"), (2, "b")]
    trig2.commit()
    trig3 = LineTrigger("l", SQLiteTriggerState(db), str(log))
    assert trig3.poll(0.0) == []
    for t in (trig, trig2, trig3):
        t.close()


def test_every_keeps_phase_and_survives_restart(db: str) -> None:
    trig = EveryTrigger("hb", SQLiteTriggerState(db), 30.0)
    assert trig.next_due(100.0) == 100.0
    assert trig.poll(100.0) == [{}]
    assert trig.poll(110.0) == [] and trig.next_due(110.0) == 130.0
    assert trig.poll(131.0) == [{}]
    assert trig.poll(215.0) == [{}]  # late: fires once, no catch-up
    assert trig.last == 190.0
    trig = EveryTrigger("hb", SQLiteTriggerState(db), 30.0)
    assert trig.poll(205.0) == [] and trig.poll(220.0) == [{}]
    with pytest.raises(ValueError):
        EveryTrigger("hb", MemoryTriggerState(), 0)


def test_sqlite_state(db: str) -> None:
    state = SQLiteTriggerState(db)
    state.update({"a/1": [1, 2], "a/2": {"x": "y"}, "b/1": 3.5})
    state.update({"a/3": None}, delete=["a/1"])
    other = SQLiteTriggerState(db)
    assert other.items("a/") == {"a/2": {"x": "y"}, "a/3": None}
    assert other.get("b/1") == 3.5 and other.get("zz", "dflt") == "dflt"
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    state.close()
    other.close()


def test_make_trigger_from_normalised_specs(tmp_path: Path) -> None:
    state = MemoryTriggerState()

    def make(user: dict) -> object:
        return make_trigger(normalize_trigger(user, "t"), key="t", state=state,
                            base_dir=str(tmp_path), use_inotify=False)

    assert isinstance(make({"file": "*.npy", "event": "created|changed"}), FileTrigger)
    assert isinstance(make({"folder": "run_*"}), FolderTrigger)
    assert isinstance(make({"line": "log.txt"}), LineTrigger)
    every = make({"every": "2min"})
    assert isinstance(every, EveryTrigger) and every.period_s == 120.0
    assert make({"after": "other"}) is None
    assert normalize_trigger(normalize_trigger({"file": "*.x"}, "t"), "t") == \
        normalize_trigger({"file": "*.x"}, "t")


def test_polling_skips_scan_of_unchanged_folder(tmp_path: Path) -> None:
    write(tmp_path / "a.npy")
    old = 1_000_000_000
    os.utime(tmp_path, (old, old))  # a folder last changed long ago
    trig = FileTrigger("t", MemoryTriggerState(), str(tmp_path / "*.npy"), use_inotify=False)
    assert paths(trig.poll(0.0)) == ["a.npy"]
    scans = []
    trig._scan = lambda: scans.append(1) or {}  # type: ignore[method-assign]
    assert trig.poll(1.0) == [] and scans == []  # folder unchanged: no scan
    write(tmp_path / "b.npy")  # a new entry changes the folder's mtime
    assert trig.poll(2.0) == [] and scans == [1]


@pytest.mark.parametrize("pattern", ["data/*.dat", "log.txt"])
def test_what_came_before_a_watcher_started_is_found_without_a_new_event(
        tmp_path: Path, db: str, pattern: str) -> None:
    """A scheduler started late (or restarted) after the writer finished: no event will
    ever wake the watcher, so its first poll must come by itself."""
    write(tmp_path / "data" / "a.dat")
    write(tmp_path / "log.txt", "one\ntwo\n")
    trigger = {"file": str(tmp_path / pattern)} if "*" in pattern else \
        {"line": str(tmp_path / pattern)}
    triggers = TriggerSet(db, base_dir=str(tmp_path))
    try:
        triggers.update({"t": {"trigger": normalize_trigger(trigger, task="t")}})
        now = time.time()
        assert triggers.timeout_s(now, 0.2) == 0.0
        found = triggers.poll(now, ready=set())
        assert len(found) == (1 if "*" in pattern else 2)
        assert triggers.timeout_s(now, 0.2) == 0.2  # then: events (or the poll interval)
    finally:
        triggers.close()


def test_a_file_between_two_polls_reaches_the_dependency_first(tmp_path: Path,
                                                                db: str) -> None:
    """b depends on a and both watch one folder: a file that appears after a's watcher
    looked and before b's did is still submitted to a before b (a looks again)."""
    (tmp_path / "data").mkdir()
    trigger = normalize_trigger({"file": str(tmp_path / "data" / "*.dat")}, task="x")
    triggers = TriggerSet(db, base_dir=str(tmp_path))
    try:
        triggers.update({"b": {"trigger": trigger, "depends_on": ["a"]},
                         "a": {"trigger": trigger}})
        looked = triggers.watchers["b"].poll

        def late_file(now: float) -> list:
            write(tmp_path / "data" / "late.dat")  # just after a's watcher looked
            return looked(now)

        triggers.watchers["b"].poll = late_file  # type: ignore[method-assign]
        found = [task for _, task, _ in triggers.poll(time.time(), ready={"b"})]
        assert found == ["a", "b"]
    finally:
        triggers.close()
