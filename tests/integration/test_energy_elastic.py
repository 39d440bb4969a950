"""An elastic task grows and shrinks with the grid: a live scheduler and agent, a replayed
carbon trace clean -> dirty -> clean, and a real process that watches its own affinity."""

from __future__ import annotations

from pathlib import Path

import pytest

from odop.protocol import MsgType
from odop.store.executions import RunStore
from odop.tasks.spec import parse_spec
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TASK = '''import os, time
def watch(out):
    """Note each change of this process's core count (and its start grant) until it has
    seen three, for 90 s at most."""
    seen, end = [], time.time() + 90
    while time.time() < end and len(seen) < 3:
        n = len(os.sched_getaffinity(0))
        if not seen or seen[-1] != n:
            seen.append(n)
            with open(out, "a") as f:
                f.write(f"{n} {os.environ['ODOP_CORES']} {os.environ['OMP_NUM_THREADS']}\\n")
        time.sleep(0.05)
'''


def _trace(path: Path) -> Path:
    """2-s slots from the scheduler's start: 50 g/kWh for 12 s (very low), 900 for 12 s
    (very high), 50 for 16 s, then 10 minutes between 200 and 800 (the quantiles)."""
    values = [50] * 6 + [900] * 6 + [50] * 8 + [200 + 100 * (i % 7) for i in range(300)]
    path.write_text("t,carbon\n" + "".join(f"{2 * i},{v}\n" for i, v in enumerate(values)))
    return path


def test_an_elastic_task_is_granted_more_cores_clean_than_dirty(tmp_path: Path,
                                                                odop_home: Path) -> None:
    (tmp_path / "watch.py").write_text(TASK)
    grid = _trace(tmp_path / "grid.csv")
    config = tmp_path / "odop.toml"
    config.write_text(f'[energy]\nprovider = "replay"\nfile = "{grid}"\nmode = "relative"\n'
                      "check_s = 0.5\n")
    out = tmp_path / "cores.txt"
    with live_run(odop_home, "elastic", cores="0,1", config=config) as (paths, client):
        spec = parse_spec({"name": "watch", "function": f"{tmp_path}/watch.py:watch",
                           "cpus": [1, 2], "elastic": True, "priority": 10}, source="test")
        client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
        client.submit("w", "watch", {"out": str(out)})
        assert client.flush(20)
        wait_for(lambda: [e["state"] for e in executions(paths.root)] == ["done"], 120,
                 "the elastic task to see its grant shrink and grow")
        client.request(MsgType.SIM_END, 30, rank=0)
        store = RunStore(paths.db, readonly=True)
        (row,) = store.all()
        history = [detail for _, _, detail in store.history(row["id"])]
        store.close()
    seen = [line.split() for line in out.read_text().splitlines()]
    assert [int(n) for n, _, _ in seen] == [2, 1, 2]  # clean, dirty, clean again
    assert seen[0][1:] == ["0,1", "2"]  # started with the clean grant and its threads
    assert any("shrunk by 1 core(s): the grid is dirtier" in h for h in history)
    assert any("grown by 1 core(s): the grid is cleaner" in h for h in history)


def test_elastic_needs_a_cpus_range() -> None:
    with pytest.raises(ValueError, match="elastic.*cpus range"):
        parse_spec({"name": "fixed", "function": "m:f", "cpus": 2, "elastic": True},
                   source="test")
