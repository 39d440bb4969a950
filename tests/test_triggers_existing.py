"""What was there before the run started is not new (``existing = "skip"``, the default);
``existing = "process"`` submits it too. Files written after the start but before the
watcher began are new. Also: the ``existing`` field's checks, and the scheduler's trigger
set (periodic watchers stop at the simulation's end; dependencies are polled first)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from odop.errors import SpecError
from odop.tasks.spec import parse_spec
from odop.tasks.triggers import (
    CLOCK_SLACK_S,
    SQLiteTriggerState,
    Trigger,
    make_trigger,
    normalize_trigger,
    note_start,
)
from odop.tasks.triggers.inotify import available
from odop.tasks.triggers.watchset import TriggerSet

MODES = [pytest.param(True, id="inotify", marks=pytest.mark.skipif(
    not available(), reason="no inotify here")), pytest.param(False, id="polling")]


def norm(user: dict, task: str = "t") -> dict:
    trigger = normalize_trigger(user, task)
    assert trigger is not None
    return trigger


def aged(path: Path, seconds: float) -> Path:
    """``path`` with its modification time ``seconds`` in the past."""
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def watcher(user: dict, db: str, tmp_path: Path, started: float,
            inotify: bool = False) -> Trigger:
    trigger = make_trigger(norm(user), key="t", state=SQLiteTriggerState(db),
                           base_dir=str(tmp_path), use_inotify=inotify, started=started)
    assert trigger is not None
    return trigger


def names(subs: list[dict]) -> list[str]:
    return sorted(os.path.basename(s["path"]) for s in subs)


@pytest.mark.parametrize("inotify", MODES)
def test_files_from_before_the_run_are_skipped(tmp_path: Path, inotify: bool) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "old.dat").write_text("from an earlier run")
    aged(data / "old.dat", 60)
    (tmp_path / "kept.dat").write_text("an old file, moved in during the run")
    aged(tmp_path / "kept.dat", 60)
    started = time.time() - 5  # the run started 5 s ago, the watcher only now
    (data / "early.dat").write_text("written before the watcher started")
    db = str(tmp_path / "state.db")
    trig = watcher({"file": "data/*.dat"}, db, tmp_path, started, inotify)
    assert names(trig.poll(0.0)) == ["early.dat"]
    os.replace(tmp_path / "kept.dat", data / "kept.dat")
    assert names(trig.poll(1.0)) == ["kept.dat"]  # appeared after the first look: new
    trig.close()
    (data / "later.dat").write_text("x")
    trig = watcher({"file": "data/*.dat"}, db, tmp_path, started, inotify)  # a restart
    assert names(trig.poll(2.0)) == ["later.dat"]
    trig.close()


def test_existing_process_submits_the_old_files(tmp_path: Path) -> None:
    (tmp_path / "old.dat").write_text("x")
    aged(tmp_path / "old.dat", 60)
    trig = watcher({"file": "*.dat", "existing": "process"}, str(tmp_path / "s.db"), tmp_path,
                   time.time())
    assert names(trig.poll(0.0)) == ["old.dat"]
    trig.close()


def test_a_change_of_an_old_file_is_new_with_changed_events(tmp_path: Path) -> None:
    (tmp_path / "a.dat").write_text("1")
    aged(tmp_path / "a.dat", 60)
    trig = watcher({"file": "*.dat", "event": "created|changed"}, str(tmp_path / "s.db"),
                   tmp_path, time.time())
    assert trig.poll(0.0) == []
    (tmp_path / "a.dat").write_text("22")
    assert names(trig.poll(1.0)) == ["a.dat"]
    trig.close()


def test_the_slack_keeps_files_written_just_before_the_start_new(tmp_path: Path) -> None:
    (tmp_path / "edge.dat").write_text("x")
    aged(tmp_path / "edge.dat", CLOCK_SLACK_S / 2)
    trig = watcher({"file": "*.dat"}, str(tmp_path / "s.db"), tmp_path, time.time())
    assert names(trig.poll(0.0)) == ["edge.dat"]
    trig.close()


@pytest.mark.parametrize("existing", ["skip", "process"])
def test_folders_from_before_the_run(tmp_path: Path, existing: str) -> None:
    (tmp_path / "run_1").mkdir()
    aged(tmp_path / "run_1", 60)
    started = time.time() - 5
    (tmp_path / "run_2").mkdir()
    trig = watcher({"folder": "run_*", "existing": existing}, str(tmp_path / "s.db"),
                   tmp_path, started)
    expected = ["run_2"] if existing == "skip" else ["run_1", "run_2"]
    assert names(trig.poll(0.0)) == expected
    trig.close()


def lines(subs: list[dict]) -> list[tuple[int, str]]:
    return [(s["lineno"], s["line"]) for s in subs]


@pytest.mark.parametrize("inotify", MODES)
def test_a_log_from_an_earlier_run_is_read_from_its_end(tmp_path: Path, inotify: bool) -> None:
    log = tmp_path / "sim.log"
    log.write_bytes(b"old 1\nold 2\nold 3\n")
    aged(log, 60)
    db = str(tmp_path / "s.db")
    trig = watcher({"line": "sim.log"}, db, tmp_path, time.time(), inotify)
    assert trig.poll(0.0) == []
    with open(log, "ab") as fh:
        fh.write(b"new 4\n")
    assert lines(trig.poll(1.0)) == [(4, "new 4")]  # numbered as lines of the file
    trig.close()
    trig = watcher({"line": "sim.log"}, db, tmp_path, time.time(), inotify)  # a restart
    assert trig.poll(2.0) == []
    trig.close()


def test_a_partial_last_line_of_an_old_log_is_completed_by_the_run(tmp_path: Path) -> None:
    log = tmp_path / "sim.log"
    log.write_bytes(b"old\nhalf")
    aged(log, 60)
    trig = watcher({"line": "sim.log"}, str(tmp_path / "s.db"), tmp_path, time.time())
    assert trig.poll(0.0) == []
    with open(log, "ab") as fh:
        fh.write(b" done\n")
    assert lines(trig.poll(1.0)) == [(2, "half done")]
    trig.close()


@pytest.mark.parametrize("existing,expected", [("skip", []), ("process", [(1, "old")])])
def test_existing_process_reads_an_old_log_from_its_start(tmp_path: Path, existing: str,
                                                          expected: list) -> None:
    log = tmp_path / "sim.log"
    log.write_bytes(b"old\n")
    aged(log, 60)
    trig = watcher({"line": "sim.log", "existing": existing}, str(tmp_path / "s.db"),
                   tmp_path, time.time())
    assert lines(trig.poll(0.0)) == expected
    trig.close()


def test_a_log_written_after_the_start_is_read_from_its_start(tmp_path: Path) -> None:
    started = time.time() - 5
    (tmp_path / "sim.log").write_bytes(b"one\ntwo\n")  # before the watcher, after the start
    trig = watcher({"line": "sim.log"}, str(tmp_path / "s.db"), tmp_path, started)
    assert lines(trig.poll(0.0)) == [(1, "one"), (2, "two")]
    trig.close()


def test_the_start_note_tells_old_lines_from_those_appended_before_the_watcher(
        tmp_path: Path) -> None:
    log = tmp_path / "sim.log"
    log.write_bytes(b"old 1\nold 2\n")
    db = str(tmp_path / "s.db")
    specs = [parse_spec({"name": n, "function": "json:dumps", "trigger": t}, source="test")
             for n, t in (("t", {"line": "sim.log"}), ("gone", {"line": "none.log"}),
                          ("all", {"line": "sim.log", "existing": "process"}))]
    note_start(db, specs, base_dir=str(tmp_path))  # the run starts
    with open(log, "ab") as fh:
        fh.write(b"new 3\n")  # the simulation writes before the scheduler watches
    trig = watcher({"line": "sim.log"}, db, tmp_path, time.time() - 5)
    assert lines(trig.poll(0.0)) == [(3, "new 3")]
    trig.close()
    state = SQLiteTriggerState(db)
    assert state.get("gone/line-start") == {"size": 0} and state.get("all/line-start") is None
    state.close()


def test_a_log_made_again_since_the_start_note_is_new(tmp_path: Path) -> None:
    log = tmp_path / "sim.log"
    log.write_bytes(b"old\n")
    db = str(tmp_path / "s.db")
    note_start(db, [parse_spec({"name": "t", "function": "json:dumps",
                                "trigger": {"line": "sim.log"}}, source="test")],
               base_dir=str(tmp_path))
    log.unlink()
    log.write_bytes(b"fresh\n")  # another file under the same name
    trig = watcher({"line": "sim.log"}, db, tmp_path, time.time() - 5)
    assert lines(trig.poll(0.0)) == [(1, "fresh")]
    trig.close()


@pytest.mark.parametrize("user", [
    {"file": "*.dat", "existing": "maybe"}, {"line": "a.log", "existing": True},
    {"folder": "run_*", "existing": "Skip"}])
def test_existing_is_checked_strictly(user: dict) -> None:
    with pytest.raises(SpecError) as err:
        normalize_trigger(user, "reduce")
    assert err.value.task == "reduce" and err.value.field == "trigger.existing"
    assert err.value.value == user["existing"]
    assert "'skip'" in err.value.allowed and "'process'" in err.value.allowed


def test_existing_is_for_file_folder_and_line_triggers_only() -> None:
    with pytest.raises(SpecError) as err:
        normalize_trigger({"every": "1s", "existing": "skip"}, "tick")
    assert err.value.field == "trigger.existing" and "every" in str(err.value)
    assert norm({"line": "a.log"})["existing"] == "skip"


def test_periodic_watchers_stop_at_the_simulation_end(tmp_path: Path) -> None:
    running = [True]
    triggers = TriggerSet(str(tmp_path / "s.db"), sim_running=lambda: running[0])
    try:
        triggers.update({"tick": {"trigger": norm({"every": "1s"})}})
        assert len(triggers.poll(100.0, set())) == 1
        assert len(triggers.poll(101.0, set())) == 1
        running[0] = False
        assert triggers.poll(102.0, set()) == [] and triggers.poll(200.0, {"tick"}) == []
        assert triggers.timeout_s(300.0, 0.2) == 0.2  # nothing due: no busy loop
    finally:
        triggers.close()


def test_the_watcher_of_a_dependency_is_polled_with_it_and_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    trigger = norm({"file": str(data / "*.dat")})
    triggers = TriggerSet(str(tmp_path / "s.db"))
    try:
        triggers.update({"b": {"trigger": trigger, "depends_on": ["a"]},
                         "a": {"trigger": trigger}})
        now = time.time()
        triggers.poll(now, set())  # the first look of both
        (data / "s1.dat").write_text("x")
        fired = triggers.poll(now + 1, {"b"})  # only b's watcher woke up
        assert [task for _, task, _ in fired] == ["a", "b"]
    finally:
        triggers.close()


DOC = Path(__file__).resolve().parent.parent / "docs" / "tasks.md"


def test_the_docs_examples_and_error_are_the_real_ones() -> None:
    text = DOC.read_text()
    block = text[text.index("**What was there before the run.**"):text.index("Guarantees:")]
    examples = re.findall(r"^(trigger = \{.*\})", block, flags=re.M)
    assert [norm(tomllib.loads(line.split("#")[0])["trigger"])["existing"]
            for line in examples] == ["process", "skip"]
    shown = re.search(r"`(task 'grep_err': .*?)`\.", block, flags=re.S)
    assert shown is not None
    with pytest.raises(SpecError) as err:
        normalize_trigger({"line": "sim.log", "existing": "yes"}, "grep_err")
    assert " ".join(shown.group(1).split()) == str(err.value)
