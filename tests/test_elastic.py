"""Elastic executions follow the core limit while they run (odop.scheduler.elastic), over
a real run store with the commands recorded (tests/test_preemption.Parts)."""

from __future__ import annotations

from pathlib import Path

from odop.protocol import MsgType
from odop.scheduler.elastic import Elastic
from odop.scheduler.selection import Pending
from tests.test_preemption import Parts

ELASTIC = {"cpus_min": 1.0, "cpus_max": 2.0, "elastic": True}


def _running(tmp_path: Path, spec: dict, limit: list[int]) -> tuple[Parts, Elastic]:
    """Execution ``e`` placed (2 cores of node a while the limit allows) and started."""
    parts = Parts(tmp_path)
    parts.decider.core_limit = lambda capacity: min(capacity, limit[0])
    parts.place("e", "t", spec)
    parts.lifecycle.started("e", 123, 1.0)
    return parts, Elastic(parts.decider, parts.lifecycle)


def test_a_running_elastic_execution_shrinks_then_grows_with_the_limit(tmp_path: Path) -> None:
    limit = [4]
    parts, elastic = _running(tmp_path, ELASTIC, limit)
    assert parts.decider.active["e"][2] == [0, 1]
    limit[0] = 1  # the grid turned very dirty
    elastic.adjust(2.0)
    assert parts.sent[-1] == ("a", MsgType.REPIN, {"execution": "e", "cores": [0]})
    assert parts.decider.granted == 1
    elastic.adjust(3.0)  # at the limit: nothing more
    assert len(parts.sent) == 1
    limit[0] = 4  # clean again
    elastic.adjust(4.0)
    assert parts.sent[-1] == ("a", MsgType.REPIN, {"execution": "e", "cores": [0, 1]})
    assert "grown by 1 core(s)" in parts.store.history("e")[-1][2]


def test_it_does_not_grow_into_cores_a_queued_execution_could_take(tmp_path: Path) -> None:
    limit = [1]
    parts, elastic = _running(tmp_path, ELASTIC, limit)
    assert parts.decider.active["e"][2] == [0]
    parts.decider.specs["big"] = {"cpus_min": 2.0, "cpus_max": 2.0}
    parts.decider.enqueue(Pending("q", "big", {}, 0.0))
    limit[0] = 4
    elastic.adjust(2.0)
    assert parts.sent == []


def test_a_task_not_marked_elastic_keeps_its_grant(tmp_path: Path) -> None:
    limit = [4]
    parts, elastic = _running(tmp_path, {"cpus_min": 1.0, "cpus_max": 2.0}, limit)
    limit[0] = 1
    elastic.adjust(2.0)
    assert parts.sent == [] and parts.decider.active["e"][2] == [0, 1]
