"""An mpi task with nodes = 2 gets a grant on each of two nodes and a block of ranks on
each, every rank pinned to its own node's grant. Two agents on this host, with distinct
node ids and disjoint cores, stand for two nodes (as in the other multi-node tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from odop.protocol import MsgType
from odop.tasks.spec import parse_spec
from tests.conftest import mpiexec
from tests.integration.helpers import executions, live_run, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.mpi,
              pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")]

RANK = '''#!/bin/sh
grep Cpus_allowed_list /proc/self/status | cut -f2 > "$1/rank-$PMI_RANK"
'''


def test_an_mpi_task_spans_two_nodes_grants(tmp_path: Path, odop_home: Path) -> None:
    script = tmp_path / "rank.sh"
    script.write_text(RANK)
    script.chmod(0o755)
    with live_run(odop_home, "span", agents={"n0": "0", "n1": "1"}) as (paths, client):
        spec = parse_spec({"name": "spread", "kind": "mpi", "program": str(script),
                           "argv": ["{out}"], "nodes": 2}, source="test")
        client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
        client.submit("s1", "spread", {"out": str(tmp_path)})
        assert client.flush(20)
        wait_for(lambda: [e["state"] for e in executions(paths.root)] == ["done"], 60,
                 "the task over two nodes to finish")
        client.request(MsgType.SIM_END, 30, rank=0)
    row = executions(paths.root)[0]
    assert [row["node"], row["cores"], row["spans"]] in ([["n0", [0], [["n1", [1]]]],
                                                          ["n1", [1], [["n0", [0]]]]])
    first = 0 if row["node"] == "n0" else 1  # ranks in blocks: the launching node's first
    assert (tmp_path / "rank-0").read_text().strip() == str(first)
    assert (tmp_path / "rank-1").read_text().strip() == str(1 - first)
