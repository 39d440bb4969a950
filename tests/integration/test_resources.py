"""GPU tasks get an idle GPU, and only that one; other tasks see none; what no node can
hold is skipped at the end, with why. Real scheduler and agent processes; the GPUs are
NVML fakes (tests/fake_nvml), as this machine has none."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from odop.protocol import MsgType
from odop.tasks.spec import parse_spec
from tests.conftest import REPO
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = pytest.mark.slow

TASK = '''import json, os, time
def look(out):
    seen = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "ODOP_GPUS")}
    with open(out, "w") as fh:
        json.dump(seen, fh)
    time.sleep(0.5)
'''


def test_gpu_tasks_run_on_the_idle_gpu_one_at_a_time(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "looks.py").write_text(TASK)
    gpus = [{"uuid": "GPU-rank", "util": 5, "procs": [[os.getpid(), 2**30]]},  # a rank's
            {"uuid": "GPU-idle"},
            {"uuid": "GPU-busy", "util": 90}]  # used by something NVML cannot name
    fake_nvml = os.pathsep.join([str(REPO / "tests" / "fake_nvml"), str(REPO)])
    with live_run(odop_home, "gpu", cores="0,1", ODOP_FAKE_NVML=json.dumps(gpus),
                  PYTHONPATH=fake_nvml) as (paths, client):
        specs = [parse_spec({"name": name, "function": f"{tmp_path}/looks.py:look", **extra},
                            source="test")
                 for name, extra in (("infer", {"gpus": 1}), ("plain", {}), ("big", {"gpus": 4}),
                                     ("huge", {"memory": "1000T"}))]
        client.send(MsgType.DECLARE, track=True, tasks=[s.to_dict() for s in specs])
        for i, task in enumerate(["infer", "infer", "plain", "big", "huge"]):
            client.submit(f"x{i}", task, {"out": str(tmp_path / f"x{i}.json")})
        assert client.flush(20)
        wait_for(lambda: [e["state"] for e in executions(paths.root)][:3] == ["done"] * 3, 60,
                 "the tasks to finish while the simulation runs")
        assert client.request(MsgType.SIM_END, 30, rank=0) is not None  # the drain ends
    seen = {i: json.loads((tmp_path / f"x{i}.json").read_text()) for i in range(3)}
    assert seen[0] == seen[1] == {"CUDA_VISIBLE_DEVICES": "1", "ODOP_GPUS": "1"}
    assert seen[2] == {"CUDA_VISIBLE_DEVICES": "", "ODOP_GPUS": ""}  # asked none, sees none
    rows = {e["id"]: e for e in executions(paths.root)}
    assert rows["x0"]["gpus"] == rows["x1"]["gpus"] == [1] and rows["x2"]["gpus"] == []
    assert rows["x3"]["state"] == "skipped"
    assert rows["x3"]["reason"] == "needs 4 GPU(s) on one node; the most any node has is 3"
    assert rows["x4"]["state"] == "skipped"
    assert rows["x4"]["reason"].startswith("needs 909.5 TiB of memory on one node; the most any")
    first, second = sorted((rows["x0"], rows["x1"]), key=lambda e: e["started_at"])
    assert first["ended_at"] <= second["started_at"]  # one idle GPU: one at a time
