"""Ctrl-C during ``odop run``'s drain: the first says what it waits for, the second stops
the tasks, leaves them queued (in the account) and exits 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import child_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _lines(stream, into: list[str]) -> None:
    for line in stream:
        into.append(line)


def _wait(pred, timeout_s: float = 30.0) -> bool:
    end = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_second_ctrl_c_stops_the_tasks_and_leaves_them_queued(tmp_path: Path,
                                                              odop_home: Path) -> None:
    data, tasks = tmp_path / "data", tmp_path / "tasks"
    data.mkdir()
    tasks.mkdir()
    (tasks / "slow.json").write_text(json.dumps({
        "name": "slow", "program": "/bin/sh", "time": "60s",
        "argv": ["-c", "touch {path}.began; sleep 60"], "trigger": {"file": f"{data}/*.in"}}))
    program = "import pathlib; [pathlib.Path(f'data/{i}.in').touch() for i in range(3)]"
    proc = subprocess.Popen([sys.executable, "-m", "odop", "run", "--tasks", str(tasks),
                             "--json", "--", sys.executable, "-c", program],
                            cwd=tmp_path, env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    reader = threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True)
    reader.start()
    try:
        assert _wait(lambda: any(data.glob("*.began"))), "".join(err)
        proc.send_signal(signal.SIGINT)
        assert _wait(lambda: any("Ctrl-C again" in line for line in err)), "".join(err)
        assert proc.poll() is None  # the first only says what it waits for
        proc.send_signal(signal.SIGINT)
        out = proc.stdout.read()
        assert proc.wait(30) == 130, "".join(err)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    said = "".join(err)
    assert "odop: draining 3 task(s); Ctrl-C again to stop now" in said, said
    account = json.loads(out)["account"]
    assert account["queued"] == 3 and account["unaccounted"] == 0, account
    assert account["done"] == 0
