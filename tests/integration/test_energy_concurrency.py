"""A live scheduler holds fewer cores while the grid is dirty, and all of them once clean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from odop.protocol import MsgType
from odop.tasks.spec import parse_spec
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = pytest.mark.slow

TASK = "import time\ndef nap():\n    time.sleep(0.6)\n"


def _most_at_once(rows: list[dict[str, Any]]) -> int:
    events = sorted([(r["started_at"], 1) for r in rows] + [(r["ended_at"], -1) for r in rows])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def _run(tmp_path: Path, home: Path, name: str, carbon: list[int]) -> list[dict[str, Any]]:
    """Four naps on a 2-core agent under a grid whose hourly values start with ``carbon``
    (the first hour is 'now'); returns their executions, all done before the run ends."""
    grid = tmp_path / f"{name}.csv"
    grid.write_text("t,carbon\n" + "".join(f"{h * 3600},{v}\n" for h, v in enumerate(carbon)))
    config = tmp_path / f"{name}.toml"
    config.write_text(f'[energy]\nprovider = "replay"\nfile = "{grid}"\nmode = "relative"\n')
    with live_run(home, name, cores="0,1", config=config) as (paths, client):
        spec = parse_spec({"name": "nap", "function": f"{tmp_path}/naps.py:nap",
                           "priority": 10}, source="test")  # no level threshold holds it
        client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
        for i in range(4):
            client.submit(f"{name}{i}", "nap", {})
        assert client.flush(20)
        wait_for(lambda: [e["state"] for e in executions(paths.root)] == ["done"] * 4, 60,
                 "the naps to finish while the simulation runs")
        client.request(MsgType.SIM_END, 30, rank=0)
        return executions(paths.root)


def test_a_dirty_grid_takes_cores_back_a_clean_one_gives_them(tmp_path: Path,
                                                              odop_home: Path) -> None:
    (tmp_path / "naps.py").write_text(TASK)
    dirty = _run(tmp_path, odop_home, "dirty", [900] + [100] * 9)  # now: very high
    clean = _run(tmp_path, odop_home, "clean", [50] + [400] * 9)  # now: very low
    assert _most_at_once(dirty) == 1  # a quarter of 2 cores, but never none
    assert _most_at_once(clean) == 2
