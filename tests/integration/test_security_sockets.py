"""Live sockets fed garbage: a real scheduler and a real agent drop and count every invalid
frame, keep serving, and change nothing in the run's database because of it."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from odop.paths import RunPaths
from odop.protocol import VERSION, MsgType, decode, encode, make, validate
from odop.protocol.messages import SCHEMA
from odop.store.executions import RunStore
from tests.conftest import child_env
from tests.integration.helpers import agent_behind_router

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
AGENT_BOUND = (MsgType.START, MsgType.PAUSE, MsgType.RESUME, MsgType.REPIN, MsgType.KILL,
               MsgType.SHUTDOWN, MsgType.ACK, MsgType.ERROR, MsgType.REPLY, MsgType.DRAINED)
"""Valid messages the scheduler must refuse: they flow the other way."""


# -- garbage ----------------------------------------------------------------------------
def _valid(mtype: MsgType, rng: random.Random) -> dict[str, Any]:
    plain = {str: "x", int: 1, float: 1.0, bool: True, list: [0], dict: {}, type(None): None,
             bytes: b"x"}

    def example(t: Any) -> Any:  # a typed list field (ListOf) holds one plain item
        return [plain[t.item_types[0]]] if hasattr(t, "item_types") else plain[t]

    return make(mtype, **{f: example(types[0]) for f, types in SCHEMA[mtype].items()})


def _mutate(msg: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    junk = [None, True, -1, 2**64 - 1, 1.5, float("nan"), "", "x" * 10_000, b"\x00",
            [], [[[[]]]], {}, {"a": {"b": {}}}, list(range(1_000))]
    key = rng.choice(sorted(msg))
    choice = rng.randrange(4)
    if choice == 0:
        del msg[key]
    elif choice == 1:
        msg[key] = rng.choice(junk)
    elif choice == 2:
        msg["v"] = rng.choice([0, 2, True, 1.0, "1", None])
    else:
        msg["type"] = rng.choice([t.value.upper() for t in MsgType] + [None, 7, "", "hello "])
    return msg


def garbage(count: int, seed: int = 9) -> Iterator[bytes]:
    """``count`` frames, each one the validator refuses: random bytes, broken msgpack,
    hostile structures and mutated valid messages of every type."""
    rng = random.Random(seed)
    fixed = [b"", b"\xc1", b"\x91" * 10_000 + b"\xc0", b"\xdd\xff\xff\xff\xff",
             b"\xdb\xff\xff\xff\xff", msgpack.packb({1: 2}), msgpack.packb([1, 2, 3]),
             msgpack.packb(msgpack.ExtType(1, b"\x80\x04N.")), encode(make(MsgType.STATUS)) + b"\0"]
    made = 0
    while made < count:
        if made < len(fixed):
            data = fixed[made]
        elif rng.random() < 0.3:
            data = rng.randbytes(rng.randrange(1, 200))
        else:
            msg = _mutate(_valid(rng.choice(list(MsgType)), rng), rng)
            data = msgpack.packb(msg, use_bin_type=True)
            if rng.random() < 0.2:
                data = data[: rng.randrange(len(data))]
        try:
            validate(decode(data))
        except Exception:  # noqa: BLE001 - we keep only frames the validator refuses
            made += 1
            yield data


# -- a live scheduler -------------------------------------------------------------------
def _run_folder(tmp_path: Path) -> RunPaths:
    (tmp_path / "odop-home").mkdir(exist_ok=True)  # the profile store lives there
    paths = RunPaths(tmp_path / "runs" / "fuzz").create()
    RunStore(paths.db).close()
    return paths


@pytest.fixture
def scheduler(tmp_path: Path, odop_home: Path) -> Iterator[tuple[RunPaths, subprocess.Popen]]:
    paths = _run_folder(tmp_path)
    with open(tmp_path / "scheduler.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "odop", "scheduler", "--run",
                                 str(paths.root)], env=child_env(ODOP_HOME=str(odop_home)),
                                stderr=log)
    yield paths, proc
    proc.terminate()
    proc.wait(10)


def _client(paths: RunPaths) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(paths.scheduler_endpoint)
    return sock


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:]


def _status(sock: zmq.Socket, timeout_s: float = 15.0,
            proc: subprocess.Popen | None = None) -> dict[str, Any]:
    """Send STATUS and return the reply's body, skipping ERROR replies to the garbage."""
    msg = make(MsgType.STATUS)
    sock.send(encode(msg))
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and (proc is None or proc.poll() is None):
        if sock.poll(200):
            mtype, reply = validate(decode(sock.recv()))
            if mtype is MsgType.REPLY and reply["ref"] == msg["id"]:
                return dict(reply["body"])
    raise AssertionError("the scheduler did not answer STATUS")


def _db(paths: RunPaths) -> tuple[Any, ...]:
    store = RunStore(paths.db, readonly=True)
    try:
        return store.all(), store.tasks(), store.counts()
    finally:
        store.close()


def test_scheduler_survives_and_counts_garbage(scheduler: tuple[RunPaths, subprocess.Popen]
                                               ) -> None:
    paths, proc = scheduler
    sock = _client(paths)
    before = _status(sock)
    db_before = _db(paths)
    frames = list(garbage(300))
    for frame in frames:
        sock.send(frame)
    sock.send_multipart([b"two", b"frames"])  # extra frames are ignored, the first is junk
    wrong_way = [_valid(t, random.Random(0)) for t in AGENT_BOUND]
    for msg in wrong_way:
        sock.send(encode(msg))
    after = _status(sock)
    assert proc.poll() is None
    assert after["invalid"] - before["invalid"] == len(frames) + 1 + len(wrong_way)
    assert _db(paths) == db_before
    assert db_before[0] == []  # no executions, before or after


def test_scheduler_errors_name_the_problem(scheduler: tuple[RunPaths, subprocess.Popen]) -> None:
    paths, _ = scheduler
    sock = _client(paths)
    _status(sock)
    sock.send(msgpack.packb({"v": VERSION, "type": "submit", "id": "m1"}))
    assert sock.poll(10_000)
    mtype, reply = validate(decode(sock.recv()))
    assert mtype is MsgType.ERROR and "missing field 'execution'" in reply["error"]


HOSTILE_VALID = {
    "submit-unknown-task": (MsgType.SUBMIT, {"execution": "e", "task": "nope", "args": {}}),
    "cancel-unknown": (MsgType.CANCEL, {"execution": "nope"}),
    "exited-unknown": (MsgType.EXITED, {"execution": "nope", "exit_code": 0, "reason": "ok",
                                        "cpu_s": 0.0, "max_rss_bytes": 0, "wall_s": 0.0,
                                        "t": 0.0}),
    "started-unknown": (MsgType.STARTED, {"execution": "nope", "pid": 1, "cores": [0], "t": 0.0}),
    "hello-string-cores": (MsgType.HELLO, {"node": "n", "cores": ["x"], "pid": 1, "sim_pids": []}),
    "hello-map-cores": (MsgType.HELLO, {"node": "n", "cores": [{}], "pid": 1, "sim_pids": []}),
    "sample-garbage-view": (MsgType.SAMPLE, {"node": "n", "sample": {"cores": "ab", "util": 3},
                                             "running": [], "sim_alive": True}),
    "sample-unhashable-running": (MsgType.SAMPLE, {"node": "n", "sample": {},
                                                   "running": [[1]], "sim_alive": True}),
    "declare-unhashable-name": (MsgType.DECLARE, {"tasks": [{"name": ["x"]}]}),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_VALID))
def test_schema_valid_but_hostile_messages(case: str, scheduler: tuple[RunPaths, subprocess.Popen]
                                           ) -> None:
    paths, proc = scheduler
    sock = _client(paths)
    _status(sock)
    mtype, fields = HOSTILE_VALID[case]
    sock.send(encode(make(mtype, **fields)))
    try:
        _status(sock, timeout_s=10, proc=proc)
        alive = proc.poll() is None
    except AssertionError:
        alive = False
    assert alive, _tail(paths.root.parent.parent / "scheduler.log")
    assert _db(paths)[0] == []


# -- a live agent -----------------------------------------------------------------------
@pytest.fixture
def agent(tmp_path: Path, odop_home: Path) -> Iterator[tuple[zmq.Socket, bytes, subprocess.Popen]]:
    """A real agent whose 'scheduler' is a ROUTER bound here: (router, identity, process)."""
    with agent_behind_router(_run_folder(tmp_path), odop_home,
                             tmp_path / "agent.log") as found:
        yield found


def _next(router: zmq.Socket, timeout_s: float) -> tuple[bytes, MsgType]:
    assert router.poll(timeout_s * 1000), "nothing from the agent"
    ident, data = router.recv_multipart()
    return ident, validate(decode(data))[0]


def _samples_within(router: zmq.Socket, count: int, timeout_s: float) -> int:
    end, seen = time.monotonic() + timeout_s, 0
    while seen < count and time.monotonic() < end:
        if router.poll(100):
            _, data = router.recv_multipart()
            seen += validate(decode(data))[0] is MsgType.SAMPLE
    return seen


def test_agent_survives_garbage_and_keeps_sampling(
        agent: tuple[zmq.Socket, bytes, subprocess.Popen]) -> None:
    router, ident, proc = agent
    for frame in garbage(300, seed=11):
        router.send_multipart([ident, frame])
    router.send_multipart([ident, b"two", b"frames"])
    for mtype in (MsgType.SUBMIT, MsgType.HELLO, MsgType.STATUS, MsgType.SAMPLE):
        router.send_multipart([ident, encode(_valid(mtype, random.Random(0)))])
    time.sleep(0.5)
    assert _samples_within(router, 3, timeout_s=10) == 3
    assert proc.poll() is None


AGENT_HOSTILE = {
    "start-empty-spec": {"spec": {}, "cores": [0]},
    "start-unknown-kind": {"spec": {"kind": "java", "target": "x"}, "cores": [0]},
    "start-no-cores": {"spec": {"kind": "python", "target": "m:f"}, "cores": []},
    "start-core-999999": {"spec": {"kind": "python", "target": "m:f"}, "cores": [999999]},
    "start-string-cores": {"spec": {"kind": "python", "target": "m:f"}, "cores": ["x"]},
    "start-string-time-limit": {"spec": {"kind": "python", "target": "m:f",
                                         "time_limit_s": "x"}, "cores": [0]},
    "start-string-threads": {"spec": {"kind": "python", "target": "m:f", "threads_max": "x"},
                             "cores": [0]},
    "start-argv-bad-placeholder": {"spec": {"kind": "executable", "target": "true",
                                            "argv": ["{missing}"]}, "cores": [0]},
}


@pytest.mark.parametrize("case", sorted(AGENT_HOSTILE))
def test_agent_refuses_malformed_start(case: str, tmp_path: Path,
                                       agent: tuple[zmq.Socket, bytes, subprocess.Popen]) -> None:
    router, ident, proc = agent
    fields = AGENT_HOSTILE[case]
    router.send_multipart([ident, encode(make(MsgType.START, execution="e1", args={},
                                              attempt=0, **fields))])
    sampled = _samples_within(router, 3, timeout_s=10)
    assert proc.poll() is None and sampled == 3, _tail(tmp_path / "agent.log")



def test_oversized_frame_is_refused_and_others_are_served(
        scheduler: tuple[RunPaths, subprocess.Popen]) -> None:
    from odop.protocol.codec import MAX_MESSAGE_BYTES

    paths, proc = scheduler
    hostile = _client(paths)
    hostile.send(b"\x00" * (MAX_MESSAGE_BYTES + 1))
    time.sleep(0.5)
    assert proc.poll() is None
    assert "counts" in _status(_client(paths))
