"""The relay hop with real ZeroMQ sockets in one process: ranks' clients -> a node's Relay
-> the scheduler's Wire (its handlers stand-ins), and the replies back to the right rank.

- several submissions that queue up go in one relay message; each rank gets its own acks;
- a request's reply (status) and an error reach the rank that asked, not the other one;
- a bad message is refused at the agent (undecodable, or a type a rank may not send) and,
  smuggled inside a relay, at the scheduler too;
- heartbeats: the agent answers a rank's, the scheduler an agent's;
- a silent agent: the rank goes straight to the scheduler (its unacknowledged messages
  sent again there) and back to the agent once it answers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from odop.engine.relay import Relay
from odop.launch import route as route_mod
from odop.launch.client import Client
from odop.paths import RunPaths
from odop.protocol import MsgType, decode, encode, make, transport, validate
from odop.scheduler.state import RunState
from odop.scheduler.wire import Wire

pytestmark = pytest.mark.timeout(60)


class Hop:
    """A scheduler's Wire, a node's Relay behind an agent socket, and ranks' clients."""

    def __init__(self, root: Path) -> None:
        self.paths = RunPaths(root).create()
        self.state = RunState()
        self.wire = Wire(self.paths.scheduler_endpoint, root, self.state)
        self.seen: list[tuple[bytes, dict[str, Any]]] = []
        self.wire.handlers = {MsgType.SUBMIT: self._ack, MsgType.DECLARE: self._ack,
                              MsgType.STATUS: self._status}
        self.relay_msgs = 0
        self.up = transport.dealer(self.paths.scheduler_endpoint, identity=b"agent:n1")
        self.relay = Relay(self.paths, "n1", self._upstream)
        self.relay.announce()

    def _upstream(self, data: bytes) -> bool:
        self.relay_msgs += 1
        self.up.send(data)
        return True

    def _ack(self, ident: bytes, msg: Any) -> None:
        self.seen.append((ident, dict(msg)))
        self.wire.send(ident, MsgType.ACK, ref=msg["id"])

    def _status(self, ident: bytes, msg: Any) -> None:
        self.wire.send(ident, MsgType.REPLY, ref=msg["id"], body={"who": msg["id"]})

    def client(self, rank: int) -> Client:
        return Client(self.paths.scheduler_endpoint, rank=rank, find_agent=lambda: (
            transport.announced(self.paths.root, transport.relay_file("n1"))))

    def turn(self, clients: list[Client], agent: bool = True) -> None:
        """One turn of every loop: ranks, agent, scheduler, agent again, ranks."""
        for c in clients:
            c.pump(0.02)
        if agent:
            self._agent_turn()
        self.wire.wait(0.02, {})
        if agent:
            self._agent_turn()
        for c in clients:
            c.pump(0.02)

    def _agent_turn(self) -> None:
        if self.relay.sock.poll(20):
            self.relay.drain()
        while self.up.poll(20):
            mtype, msg = validate(decode(self.up.recv()))
            if mtype is MsgType.DELIVER:
                self.relay.deliver(msg)

    def close(self, clients: list[Client]) -> None:
        for c in clients:
            c.close()
        self.relay.close()
        self.up.close(0)
        self.wire.close()


@pytest.fixture
def hop(tmp_path: Path) -> Any:
    h = Hop(tmp_path / "run")
    yield h
    h.close([])


def until(hop: Hop, clients: list[Client], done: Any, turns: int = 100,
          agent: bool = True) -> None:
    for _ in range(turns):
        hop.turn(clients, agent)
        if done():
            return
    raise AssertionError("not reached")


def test_queued_submissions_go_in_one_relay_and_each_rank_gets_its_acks(hop: Hop) -> None:
    ranks = [hop.client(0), hop.client(1)]
    try:
        until(hop, ranks, lambda: all(c.route.via_agent and not c.route.unanswered
                                      for c in ranks))
        before = hop.relay_msgs
        for k in range(20):
            ranks[k % 2].submit(f"e{k}", "t", {"k": k})
        until(hop, ranks, lambda: not ranks[0].outbox and not ranks[1].outbox)
        assert len({m["execution"] for _, m in hop.seen}) == 20
        assert hop.relay_msgs - before < 20  # several a relay message
        assert {ident[:1] for ident, _ in hop.seen} == {b"\xff"}  # all relayed
        assert all(c.route.direct is None for c in ranks)  # no rank's own connection
    finally:
        hop.close(ranks)


def test_replies_reach_the_rank_that_asked(hop: Hop) -> None:
    ranks = [hop.client(0), hop.client(1)]
    try:
        until(hop, ranks, lambda: all(c.route.via_agent for c in ranks))
        asked = ranks[1].send(MsgType.STATUS)["id"]
        ranks[1].awaiting[asked] = {}
        until(hop, ranks, lambda: asked in ranks[1].replies)
        assert ranks[1].replies[asked]["body"] == {"who": asked}
        assert asked not in ranks[0].replies
        ranks[0].send(MsgType.CANCEL, execution="x")  # no handler here: an error
        until(hop, ranks, lambda: bool(ranks[0].errors))
        assert "does not accept cancel" in ranks[0].errors[0] and not ranks[1].errors
    finally:
        hop.close(ranks)


def test_relay_refuses_and_answers(hop: Hop) -> None:
    rank = transport.dealer(hop.relay.endpoint)
    try:
        rank.send(b"\xc1")  # not msgpack
        rank.send(encode(make(MsgType.HELLO, node="n1", cores=[0], pid=1, sim_pids=[])))
        ping = make(MsgType.HEARTBEAT)
        rank.send(encode(ping))
        time.sleep(0.2)
        hop.relay.drain()
        got = [validate(decode(rank.recv()))[1] for _ in range(3) if rank.poll(2000)]
        assert [m["type"] for m in got] == ["error", "error", "heartbeat"]
        assert "relays only" in got[1]["error"] and got[2]["ref"] == ping["id"]
        assert hop.relay.invalid == 2 and hop.relay_msgs == 0  # nothing went on
    finally:
        rank.close(0)


def test_the_scheduler_refuses_an_agent_message_inside_a_relay(hop: Hop) -> None:
    inner = encode(make(MsgType.EXITED, execution="e", exit_code=0, signal=None, reason="",
                        cpu_s=0.0, max_rss_bytes=0, wall_s=0.0, t=0.0))
    hop.up.send(encode(make(MsgType.RELAY, node="n1", routes=[b"r1"], msgs=[inner])))
    hop.up.send(encode(make(MsgType.HEARTBEAT)))
    hop.wire.wait(1.0, {})
    replies = {m["type"]: m for m in (validate(decode(hop.up.recv()))[1]
                                      for _ in range(2) if hop.up.poll(2000))}
    assert set(replies) == {"deliver", "heartbeat"}  # the agent's heartbeat answered
    error = validate(decode(replies["deliver"]["msgs"][0]))[1]
    assert replies["deliver"]["routes"] == [b"r1"] and "only client messages" in error["error"]
    assert hop.state.invalid == 1


def test_a_silent_agent_is_left_for_the_scheduler_and_found_again(
        hop: Hop, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(route_mod, "SILENT_S", 0.3)
    monkeypatch.setattr(route_mod, "RETRY_S", 0.2)
    rank = hop.client(0)
    try:
        until(hop, [rank], lambda: rank.route.via_agent and not rank.route.unanswered)
        rank.submit("e1", "t", {})
        end = time.monotonic() + 5
        while rank.route.via_agent and time.monotonic() < end:  # the agent does not turn
            hop.turn([rank], agent=False)
        assert not rank.route.via_agent and rank.route.direct is not None
        until(hop, [rank], lambda: not rank.outbox, agent=False)  # taken directly
        assert [m["execution"] for ident, m in hop.seen if ident[:1] != b"\xff"] == ["e1"]
        until(hop, [rank], lambda: rank.route.via_agent)  # the agent answers again
        assert rank.route.direct is None and rank.route.moves == 2
        rank.submit("e2", "t", {})
        until(hop, [rank], lambda: not rank.outbox)
        assert hop.seen[-1][0][:1] == b"\xff"
    finally:
        rank.close()


def test_no_agent_announced_means_straight_to_the_scheduler(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "run").create()
    client = Client(paths.scheduler_endpoint, find_agent=lambda: None)
    try:
        assert client.route.direct is not None and client.route.agent is None
        assert not client.route.via_agent
    finally:
        client.close()


def test_zmq_routing_ids_never_look_relayed(hop: Hop) -> None:
    peer = zmq.Context.instance().socket(zmq.DEALER)
    peer.connect(hop.paths.scheduler_endpoint)
    try:
        peer.send(encode(make(MsgType.HEARTBEAT)))
        assert hop.wire.sock.poll(2000)
        ident = hop.wire.sock.recv_multipart()[0]
        assert ident[:1] == b"\x00"
    finally:
        peer.close(0)
