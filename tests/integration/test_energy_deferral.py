"""A live run under a replayed carbon trace with a dip: a deferrable task waits for the dip
and runs in it, one whose deadline falls before the dip runs at once, and the run's
report gives both decisions with their reasons."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from odop.protocol import MsgType
from odop.report import build_report
from odop.tasks.spec import parse_spec
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TASK = "import time\ndef work():\n    time.sleep(0.3)\n"
DIP = (15.0, 21.0)
"""Seconds after the test starts during which the grid is clean."""


def _trace(path: Path, t0: float) -> None:
    """400 gCO2/kWh every second, 60 in the dip, for two minutes from ``t0``."""
    rows = [f"{t0 + s:.0f},{60 if DIP[0] <= s < DIP[1] else 400}\n" for s in range(120)]
    path.write_text("t,carbon\n" + "".join(rows))


def _spec(tmp_path: Path, name: str, deadline: str) -> dict:
    return parse_spec({"name": name, "function": f"{tmp_path}/work.py:work", "time": "1s",
                       "deadline": deadline, "energy": {"deferrable": True}},
                      source="test").to_dict()


def test_a_deferrable_task_waits_for_the_dip_a_tight_one_runs_at_once(
        tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "work.py").write_text(TASK)
    t0 = float(int(time.time()))
    _trace(tmp_path / "grid.csv", t0)
    config = tmp_path / "odop.toml"
    config.write_text(f'[energy]\nprovider = "replay"\nfile = "{tmp_path / "grid.csv"}"\n')
    with live_run(odop_home, "dip", cores="0,1", config=config) as (paths, client):
        client.send(MsgType.DECLARE, track=True, tasks=[_spec(tmp_path, "green", "60s"),
                                                        _spec(tmp_path, "tight", "6s")])
        client.submit("green1", "green", {})
        client.submit("tight1", "tight", {})
        assert client.flush(20)
        wait_for(lambda: [e["state"] for e in executions(paths.root)] == ["done"] * 2, 90,
                 "both tasks to run while the simulation runs")
        client.request(MsgType.SIM_END, 30, rank=0)
    rows = {e["task"]: e for e in executions(paths.root)}
    green, tight = rows["green"], rows["tight"]
    assert t0 + DIP[0] <= green["started_at"] < t0 + DIP[1]  # waited for the dip, ran in it
    assert tight["started_at"] < t0 + DIP[0]  # its deadline is before the dip: not held
    assert tight["ended_at"] <= tight["deadline"]
    html = build_report(paths.root, tmp_path / "report")[0].read_text()
    decisions = html[html.index("<h2>Energy decisions</h2>"):]
    assert "deferred to" in decisions and "60 g/kWh there against 400 g/kWh now" in decisions
    assert "starts at once: no cleaner window with room before its latest start" in decisions
