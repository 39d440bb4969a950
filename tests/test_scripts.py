"""Python-script tasks on real processes: forked with the semantics of ``python task.py``,
warm from what their previous runs imported, and fresh for good when only a fork fails."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop.engine.engine import Engine, Exit
from odop.engine.scripts import ScriptBook, script_argv

PYTHON = os.path.basename(sys.executable)
PATH = os.path.dirname(sys.executable)

SEMANTICS = '''
import atexit, json, os, sys, threading, time
WARM = "numpy" in sys.modules
import numpy
helper_seen = False
try:
    import helper
    helper_seen = helper.ME
except ImportError:
    pass
out = sys.argv[1]
def later():
    time.sleep(0.2)
    open(out + ".thread", "w").close()
threading.Thread(target=later).start()
atexit.register(lambda: open(out + ".atexit", "w").close())
info = {"name": __name__, "argv": sys.argv, "path0": sys.path[0], "warm": WARM,
        "helper": helper_seen, "me": os.getpid(), "parent": os.getppid(),
        "globals_clean": "STALE" not in globals()}
STALE = 1
open(out, "w").write(json.dumps(info))
if __name__ == "__main__":
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
'''
FORK_HATER = '''
import os, sys
cmdline = open(f"/proc/{os.getppid()}/cmdline").read()
forked = "odop.engine.forkserver" in cmdline
open(sys.argv[1], "a").write("forked\\n" if forked else "fresh\\n")
sys.exit(5 if forked else 0)
'''


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "task.py").write_text(SEMANTICS)
    (tmp_path / "tasks" / "helper.py").write_text("ME = 'sibling'\n")
    (tmp_path / "tasks" / "hater.py").write_text(FORK_HATER)
    (tmp_path / "tasks" / "fails.py").write_text("import sys\nsys.exit('broken input')\n")
    eng = Engine(tmp_path / "run", grace_s=0.5, cwd=str(tmp_path), cgroups=None,
                 scripts=ScriptBook(tmp_path / "profiles.db"))
    assert eng.server is not None and eng.server.wait_ready()
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


def run(engine: Engine, execution: str, name: str, argv: list[str]) -> Exit:
    spec = {"kind": "executable", "name": name, "target": sys.executable, "argv": argv}
    engine.start(execution, spec, {}, [0])
    end = time.monotonic() + 30
    while time.monotonic() < end:
        for e in engine.reap():
            if e.execution == execution:
                return e
        time.sleep(0.01)
    raise AssertionError(f"{execution} did not exit")


def test_a_script_runs_as_a_fresh_python_would(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "o1.json"
    result = run(engine, "e1", "sem", ["tasks/task.py", str(out), "3"])
    assert result.exit_code == 3
    info = json.loads(out.read_text())
    assert info["name"] == "__main__" and info["argv"] == ["tasks/task.py", str(out), "3"]
    assert info["path0"] == str(tmp_path / "tasks") and info["helper"] == "sibling"
    assert info["globals_clean"] and not info["warm"]
    assert (tmp_path / "o1.json.thread").exists()  # non-daemon thread joined
    assert (tmp_path / "o1.json.atexit").exists()  # atexit ran
    assert "forkserver" in Path(f"/proc/{info['parent']}/cmdline").read_text()
    failed = run(engine, "e2", "fails", ["tasks/fails.py"])
    assert failed.exit_code == 1
    assert "broken input" in (tmp_path / "run/tasks/e2/stderr").read_text()


def test_the_second_run_finds_what_the_first_imported(engine: Engine, tmp_path: Path) -> None:
    run(engine, "w0", "sem", ["tasks/task.py", str(tmp_path / "w0.json")])
    imports = engine.scripts.entry("sem")[0]
    assert "numpy" in imports and "helper" not in imports  # siblings may change: not kept
    assert ScriptBook(tmp_path / "profiles.db").entry("sem")[0] == imports  # in the store
    infos = []
    for i in range(1, 30):
        out = tmp_path / f"w{i}.json"
        assert run(engine, f"w{i}", "sem", ["tasks/task.py", str(out)]).exit_code == 0
        infos.append(json.loads(out.read_text()))
        if infos[-1]["warm"]:
            break
        time.sleep(0.1)  # its zygote imports numpy meanwhile
    warm = infos[-1]
    assert warm["warm"] and warm["helper"] == "sibling" and warm["globals_clean"]
    assert engine.server is not None and warm["parent"] != engine.server.pid  # a zygote


def test_a_script_that_fails_only_when_forked_runs_fresh_for_good(engine: Engine,
                                                                   tmp_path: Path) -> None:
    log = tmp_path / "hater.log"
    codes = [run(engine, f"h{i}", "hater", ["tasks/hater.py", str(log)]).exit_code
             for i in range(4)]
    assert log.read_text().split() == ["forked", "fresh", "fresh", "fresh"]
    assert codes == [5, 0, 0, 0]
    imports, mode, reason = ScriptBook(tmp_path / "profiles.db").entry("hater")
    assert mode == "fresh" and "status 5" in reason


def test_a_script_that_fails_fresh_too_goes_back_to_forked(engine: Engine,
                                                          tmp_path: Path) -> None:
    (tmp_path / "tasks" / "both.py").write_text(FORK_HATER.replace("0)", "6)"))
    log = tmp_path / "both.log"
    codes = [run(engine, f"b{i}", "both", ["tasks/both.py", str(log)]).exit_code
             for i in range(3)]
    assert codes == [5, 6, 5]  # its own failure, not the fork's: forked again
    assert log.read_text().split() == ["forked", "fresh", "forked"]


@pytest.mark.parametrize(("argv", "found"), [
    ([PYTHON, "t.py", "a"], ("t.py", ["a"])),
    ([sys.executable, "t.py"], ("t.py", [])),
    ([PYTHON, "-u", "t.py"], None),  # interpreter options: a fresh interpreter
    ([PYTHON, "t.txt"], None),
    (["sh", "t.py"], None),
    ([PYTHON], None),
])
def test_which_programs_are_scripts(argv: list[str], found: object) -> None:
    assert script_argv(argv, PATH) == found


def test_another_interpreter_is_not_this_one(tmp_path: Path) -> None:
    other = tmp_path / "python3"
    other.symlink_to(os.path.realpath(sys.executable))  # same file, another folder
    assert script_argv(["python3", "t.py"], str(tmp_path)) is None


def test_a_missing_placeholder_fails_the_start_and_leaves_nothing(engine: Engine) -> None:
    spec = {"kind": "executable", "name": "sem", "target": sys.executable,
            "argv": ["tasks/task.py", "{out}"]}
    with pytest.raises(KeyError):
        engine.start("nope", spec, {}, [0])
    assert "nope" not in engine.tasks and not engine._script_runs
