"""How the commands find a run: 'latest' by creation time, the run as the first argument
or as --run, and an ended run said so at once (issue 18: items 1, 14, 15)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from odop.cli.main import build_parser, main
from odop.paths import created_at, resolve_run
from odop.store.executions import RunStore
from tests.conftest import child_env


def make_run(home: Path, name: str, *, started: float | None, scheduler: str = "none",
             executions: int = 0) -> Path:
    """``home/runs/<name>`` with a database; ``scheduler``: none, ended, alive (this
    process stands for it) or dead (a pid that has exited, on this node)."""
    root = home / "runs" / name
    root.mkdir(parents=True)
    store = RunStore(root / "odop.db")
    store.set_meta("run", name)
    if started is not None:
        store.set_meta("started", started)
    node = os.uname().nodename
    if scheduler == "alive":
        store.add_component("scheduler", node, os.getpid())
    elif scheduler in ("ended", "dead"):
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        store.add_component("scheduler", node, gone.pid)
        if scheduler == "ended":
            store.end_component("scheduler", node, gone.pid)
    for i in range(executions):
        store.add(f"{i:032x}", "t", {}, now=time.time())
    store.close()
    return root


# -- 1: latest is the run created last, and the command says which -------------------
def test_latest_is_the_newest_by_creation_time_not_by_name(odop_home: Path) -> None:
    now = time.time()
    make_run(odop_home, "extrun", started=now - 3600)       # sorts last by name
    make_run(odop_home, "20260101-000000-aaaa", started=now - 60)
    newest = make_run(odop_home, "20250101-000000-bbbb", started=now)
    assert resolve_run("latest", odop_home).root == newest.resolve()


def test_latest_falls_back_to_the_scheduler_start(odop_home: Path) -> None:
    old = make_run(odop_home, "zzz-old", started=time.time() - 100)
    new = make_run(odop_home, "aaa-external", started=None, scheduler="alive")
    assert created_at(new) == pytest.approx(time.time(), abs=30)
    assert resolve_run("latest", odop_home).root == new.resolve() != old.resolve()


def test_latest_says_which_run_it_picked(odop_home: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    make_run(odop_home, "zzz", started=time.time() - 100)
    make_run(odop_home, "aaa", started=time.time())
    assert main(["status", "latest"]) == 0
    out = capsys.readouterr()
    assert "latest run: aaa created " in out.err
    assert out.out.startswith("run aaa ")


def test_an_unknown_run_lists_recent_runs_newest_last(odop_home: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    make_run(odop_home, "a-newer", started=time.time())
    make_run(odop_home, "b-older", started=time.time() - 10)
    assert main(["status", "nope"]) == 2
    assert "recent runs: b-older, a-newer" in capsys.readouterr().err


# -- 14: the run as the first argument or as --run, for every command that takes one ---
def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv[0]).parse_args(argv)


@pytest.mark.parametrize("command", ["status", "report", "watch", "export"])
def test_run_first_or_as_an_option(command: str, odop_home: Path) -> None:
    from odop.cli.common import chosen_run

    assert chosen_run(parse([command, "r1"])) == "r1"
    assert chosen_run(parse([command, "--run", "r1"])) == "r1"


def test_submit_and_cancel_take_the_run_first_or_as_an_option() -> None:
    from odop.cli.common import split_run

    args = parse(["submit", "r1", "reduce", "path=a", "n=2"])
    assert split_run(args, args.words, "a task") == ("r1", ["reduce", "path=a", "n=2"])
    args = parse(["submit", "reduce", "path=a", "--run", "r1"])
    assert split_run(args, args.words, "a task") == ("r1", ["reduce", "path=a"])
    args = parse(["cancel", "r1", "abc123"])
    assert split_run(args, args.words, "an id") == ("r1", ["abc123"])
    args = parse(["cancel", "abc123", "--run", "r1"])
    assert split_run(args, args.words, "an id") == ("r1", ["abc123"])


@pytest.mark.parametrize(("argv", "message"), [
    (["status"], "which run? give it as the first argument or as --run RUN"),
    (["report", "a", "--run", "b"], "two runs given, 'a' and --run 'b'"),
    (["submit", "reduce"], "give the run, then the task's name (or the run as --run RUN)"),
    (["cancel", "abc"], "give the run, then the execution id"),
])
def test_a_missing_or_doubled_run_is_named(argv: list[str], message: str, odop_home: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("form", [["r1"], ["--run", "r1"]])
def test_status_reads_the_run_either_way(form: list[str], odop_home: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    make_run(odop_home, "r1", started=time.time(), executions=1)
    assert main(["status", *form]) == 0
    assert capsys.readouterr().out.startswith("run r1 ")


# -- 15: a request to a run that has ended is refused at once --------------------------
@pytest.mark.parametrize("scheduler", ["ended", "dead"])
@pytest.mark.parametrize("argv", [["submit", "r1", "reduce", "path=x"],
                                  ["submit", "reduce", "--run", "r1"],
                                  ["cancel", "r1", "00000"]])
def test_a_run_that_has_ended_is_said_so_at_once(scheduler: str, argv: list[str],
                                                 odop_home: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    make_run(odop_home, "r1", started=time.time(), scheduler=scheduler, executions=1)
    assert main([*argv, "--timeout", "20"]) == 2
    err = capsys.readouterr().err
    assert "run r1 has ended (its scheduler" in err, err
    assert "no answer" not in err


def test_the_shell_command_says_so_too(odop_home: Path) -> None:
    make_run(odop_home, "r1", started=time.time(), scheduler="ended")
    done = subprocess.run([sys.executable, "-m", "odop", "submit", "r1", "reduce"],
                          capture_output=True, text=True, timeout=60,
                          env=child_env(ODOP_HOME=str(odop_home)))
    assert done.returncode == 2
    assert done.stderr.startswith("odop submit: error: run r1 has ended (its scheduler "
                                  "stopped at ")
