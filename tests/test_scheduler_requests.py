"""The client handlers as plain objects: a real run store and decider, a recording send,
no socket and no service."""

from __future__ import annotations

from pathlib import Path

from odop.protocol import MsgType
from odop.tasks.triggers.watchset import TriggerSet
from tests.test_preemption import Parts


def _requests(parts: Parts, tmp: Path, replies: list) -> object:
    from odop.energy.advisor import EnergyPolicy
    from odop.scheduler.requests import ClientRequests

    return ClientRequests(parts.decider, parts.store, parts.profiles, parts.lifecycle,
                          TriggerSet(str(tmp / "odop.db")), parts.lifecycle.holds,
                          EnergyPolicy.from_config({}), parts.lifecycle.state,
                          lambda route, mtype, **f: replies.append((route, mtype, f)),
                          last_look=lambda: None)


def test_declare_submit_and_cancel_reply_on_the_clients_route(tmp_path: Path) -> None:
    parts, replies = Parts(tmp_path), []
    clients = _requests(parts, tmp_path, replies)
    spec = {"name": "t", "kind": "executable", "target": "/bin/true", "cpus_min": 1.0,
            "cpus_max": 1.0}
    clients.on_declare(b"me", {"id": "d1", "tasks": [spec]})
    clients.on_submit(b"me", {"id": "s1", "execution": "e1", "task": "t", "args": {},
                              "rank": 0})
    clients.on_submit(b"me", {"id": "s2", "execution": "e2", "task": "nope", "args": {}})
    clients.on_cancel(b"me", {"id": "c1", "execution": "e1"})
    assert [(m, f.get("ref")) for _, m, f in replies] == [
        (MsgType.ACK, "d1"), (MsgType.ACK, "s1"), (MsgType.ERROR, "s2"), (MsgType.ACK, "c1")]
    assert "unknown task 'nope'" in replies[2][2]["error"]
    e1 = parts.store.get("e1") or {}
    assert e1["state"] == "cancelled" and e1["origin"] == "rank 0"
    assert e1["reason"] == "cancelled by user" and "e1" not in parts.decider.pending
