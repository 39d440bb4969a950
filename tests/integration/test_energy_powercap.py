"""A live run whose node power (a replayed trace, ODOP_POWER_TRACE) crosses its power cap:
the lowest-priority task is paused first, none before its minimum runtime, and both
resume once the power is back under the resume level. The simulation beside them (a
rank the agent watches) is never stopped and ends with its undisturbed result."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from odop.procs import pid_alive
from odop.protocol import MsgType
from odop.tasks.spec import parse_spec
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TASK = "import time\ndef spin():\n    for _ in range(100):\n        time.sleep(0.1)\n"
MIN_RUNTIME_S = 3.0
SIM = ("import time\ntotal = 0\nfor step in range(250):\n    total += sum(range(step * 100))\n"
       "    time.sleep(0.1)\nprint(total)\n")
"""A rank that mostly waits (as a GPU code does) for about 25 s, then prints its checksum."""
OVER = (6.0, 14.0)
"""Seconds after the test starts during which the node draws 150 W (cap: 100 W)."""


def _states(pid: int, seen: set[str], stop: threading.Event) -> None:
    """Every process state ``pid`` was seen in, until ``stop`` (T: stopped)."""
    while not stop.is_set() and pid_alive(pid):
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                seen.add(fh.read().rsplit(b")", 1)[1].split()[0].decode())
        except OSError:
            return
        time.sleep(0.02)


def _events(run: Path) -> list[tuple[str, float, str, str]]:
    with sqlite3.connect(run / "odop.db") as conn:
        return list(conn.execute("SELECT execution, t, state, detail FROM events ORDER BY t"))


def test_over_the_cap_lowest_priority_pauses_first_and_all_resume(
        tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "spin.py").write_text(TASK)
    config = tmp_path / "odop.toml"
    config.write_text(f"[energy]\npower_cap_w = 100\nresume_w = 80\n"
                      f"min_runtime_s = {MIN_RUNTIME_S}\ncap_settle_s = 0.5\n")
    trace = tmp_path / "power.csv"
    t0 = time.time()
    trace.write_text(f"t,watts\n0,50\n{t0 + OVER[0]},150\n{t0 + OVER[1]},50\n")
    sim = subprocess.Popen([sys.executable, "-c", SIM], stdout=subprocess.PIPE, text=True)
    seen: set[str] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_states, args=(sim.pid, seen, stop), daemon=True)
    watcher.start()
    with live_run(odop_home, "cap", cores="0,1", config=config, agent_args=(
            "--sim-pids", str(sim.pid)), ODOP_POWER_TRACE=str(trace)) as (paths, client):
        specs = [parse_spec({"name": name, "function": f"{tmp_path}/spin.py:spin",
                             "priority": prio}, source="test").to_dict()
                 for name, prio in (("low", 0), ("high", 9))]
        client.send(MsgType.DECLARE, track=True, tasks=specs)
        client.submit("low1", "low", {})
        client.submit("high1", "high", {})
        assert client.flush(20)
        wait_for(lambda: [e["state"] for e in executions(paths.root)] == ["done"] * 2, 90,
                 "both tasks to finish after the power came back under the cap")
        client.request(MsgType.SIM_END, 30, rank=0)
    out, _ = sim.communicate(timeout=60)
    stop.set()
    watcher.join(5)
    assert sim.returncode == 0 and int(out) == sum(sum(range(s * 100)) for s in range(250))
    assert "T" not in seen and seen, seen  # the simulation was never stopped
    rows = {e["id"]: e for e in executions(paths.root)}
    pauses = [(e, t) for e, t, state, detail in _events(paths.root)
              if state == "paused" and "power cap" in detail]
    assert [e for e, _ in pauses][:2] == ["low1", "high1"]  # the lowest priority first
    for execution, t in pauses:
        assert t >= t0 + OVER[0]  # only while over the cap
        assert t - rows[execution]["started_at"] >= MIN_RUNTIME_S  # never too young
    resumed = [(e, t) for e, t, state, detail in _events(paths.root)
               if state == "running" and detail.startswith("resumed")]
    assert {e for e, _ in resumed} == {"low1", "high1"}
    assert all(t >= t0 + OVER[1] for _, t in resumed)  # once the power dropped
