"""`odop status`: the reason of every execution that did not end well, the signal of a
killed one, and the configuration that was in force (issue 18: items 6, 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from odop.cli.main import main
from odop.store.executions import RunStore
from odop.store.states import ExecState as S
from tests.conftest import child_env


def run_with_outcomes(home: Path) -> Path:
    """A run with one execution per way to end: done, exit 1, time limit, skipped,
    cancelled while queued, and one still queued."""
    root = home / "runs" / "r"
    root.mkdir(parents=True)
    store = RunStore(root / "odop.db")
    store.set_meta("started", time.time())
    t = time.time()
    for ex in ("done", "exit1", "limit", "skip", "cancel", "queued"):
        store.add(ex.ljust(32, "0"), ex, {}, now=t)
    ended: list[tuple[str, S, dict[str, Any]]] = [
            ("done", S.DONE, {"exit_code": 0, "reason": "ok"}),
            ("exit1", S.FAILED, {"exit_code": 1, "reason": "exit status 1"}),
            ("limit", S.FAILED, {"exit_code": None, "signal": 9,
                                 "reason": "time limit exceeded"})]
    for ex, end, fields in ended:
        store.transition(ex.ljust(32, "0"), S.PLACED, node="n", cores=[1])
        store.transition(ex.ljust(32, "0"), S.RUNNING, started_at=t)
        store.transition(ex.ljust(32, "0"), end, ended_at=t + 2, wall_s=2.0, **fields)
    store.transition("skip".ljust(32, "0"), S.SKIPPED,
                     reason="dependency 'a' failed for good (execution 1234)")
    store.transition("cancel".ljust(32, "0"), S.CANCELLED, reason="cancelled by user")
    store.close()
    return root


def columns(out: str) -> dict[str, dict[str, str]]:
    """The executions table as {task: {column: text}}, cut at the header's columns."""
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("id "))
    names = lines[head].split()
    starts = [lines[head].index(f" {n}") + 1 if i else 0 for i, n in enumerate(names)]
    table = {}
    for line in lines[head + 1:]:
        if line.startswith("component"):
            break
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        table[cells[1]] = dict(zip(names, cells, strict=True))
    return table


def test_the_table_says_why_an_execution_failed_was_killed_or_skipped(
        odop_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_with_outcomes(odop_home)
    assert main(["status", "r"]) == 0
    table = columns(capsys.readouterr().out)
    assert table["exit1"]["exit"] == "1" and table["exit1"]["reason"] == "exit status 1"
    assert table["limit"]["exit"] == "SIGKILL"  # a time-limit kill: not an empty column
    assert table["limit"]["reason"] == "time limit exceeded"
    assert table["skip"]["reason"] == "dependency 'a' failed for good (execution 1234)"
    assert table["cancel"]["reason"] == "cancelled by user"
    assert table["done"]["exit"] == "0" and table["done"]["reason"] == ""  # 'ok': no news
    assert table["queued"]["state"] == "queued" and table["queued"]["reason"] == ""


def test_no_reason_column_when_everything_went_well(odop_home: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    root = odop_home / "runs" / "ok"
    root.mkdir(parents=True)
    store = RunStore(root / "odop.db")
    store.add("a" * 32, "t", {})
    store.transition("a" * 32, S.PLACED, node="n", cores=[0])
    store.transition("a" * 32, S.DONE, exit_code=0, reason="ok")
    store.close()
    assert main(["status", "ok"]) == 0
    assert "reason" not in columns(capsys.readouterr().out)["t"]


def test_json_has_the_signal_and_the_reason(odop_home: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    run_with_outcomes(odop_home)
    assert main(["status", "r", "--json"]) == 0
    ex = {e["task"]: e for e in json.loads(capsys.readouterr().out)["executions"]}
    assert (ex["limit"]["exit_code"], ex["limit"]["signal"]) == (None, 9)
    assert ex["limit"]["reason"] == "time limit exceeded"


def test_meta_config_shows_the_home_in_force(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from odop.config import load_config
    from odop.launch.startup import open_run

    home = tmp_path / "elsewhere"
    monkeypatch.setenv("ODOP_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    paths, _ = open_run("cfg", load_config(None), os.uname().nodename)
    assert paths.root == (home / "runs" / "cfg").resolve()
    assert main(["status", "cfg", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)["meta"]
    assert meta["config"]["home"] == str(home.resolve())
    assert load_config(meta["config"]).home_path == home.resolve()


@pytest.mark.slow
def test_a_real_time_limit_kill_shows_its_signal_and_reason(tmp_path: Path) -> None:
    """A wrapped run whose task overruns `time` x `time_limit_factor` (0.25 s x 4)."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "slow.toml").write_text(
        'program = "sleep"\nargv = ["30"]\ntime = "0.25s"\ntrigger = { every = "1h" }\n')
    env = child_env(ODOP_HOME=str(tmp_path / "home"))
    run = subprocess.run([sys.executable, "-m", "odop", "run", "--run", "tl", "--tasks", "tasks",
                          "--", "sleep", "3"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    status = subprocess.run([sys.executable, "-m", "odop", "status", "tl"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr + run.stderr
    table = columns(status.stdout)
    assert table["slow"]["state"] == "failed", status.stdout + run.stderr
    assert table["slow"]["exit"] == "SIGKILL" and table["slow"]["reason"] == "time limit exceeded"
