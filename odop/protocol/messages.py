"""Message types and their schema; every message is validated on receipt.

A message is a msgpack map ``{"v": VERSION, "type": <MsgType>, "id": <str>, ...fields}``.
The schema below is the single source of truth; docs/protocol.md describes it for people.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from typing import Any, TypedDict

from odop.errors import ProtocolError
from odop.protocol.codec import MAX_ITEMS

VERSION = 1


class _ListOfMeta(type):
    item_types: tuple[type, ...]

    def __instancecheck__(cls, value: object) -> bool:
        if not isinstance(value, list) or len(value) > MAX_ITEMS:
            return False
        return all(isinstance(v, cls.item_types) and not isinstance(v, bool) for v in value)


def ListOf(*types: type) -> type:  # noqa: N802 (reads as a type in SCHEMA)
    """The type of lists whose items are all of ``types`` (a bool is not an int):
    ``isinstance([1, 2], ListOf(int))`` is True."""
    name = f"list[{'|'.join(t.__name__ for t in types)}]"
    return _ListOfMeta(name, (), {"item_types": types})


_num = (int, float)
_opt_num = (int, float, type(None))
_opt_str = (str, type(None))
_opt_int = (int, type(None))


class MsgType(str, enum.Enum):
    """Every message type; the docstring of each schema entry says who sends it."""

    # client (simulation rank or CLI) -> scheduler
    SUBMIT = "submit"
    DECLARE = "declare"
    CANCEL = "cancel"
    STATUS = "status"
    SIM_END = "sim_end"
    PHASE = "phase"
    # agent -> scheduler
    RELAY = "relay"
    HELLO = "hello"
    SAMPLE = "sample"
    STARTED = "started"
    EXITED = "exited"
    # scheduler -> agent
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    REPIN = "repin"
    KILL = "kill"
    SHUTDOWN = "shutdown"
    DELIVER = "deliver"
    # both ways: rank <-> agent, agent <-> scheduler
    HEARTBEAT = "heartbeat"
    # replies, both ways
    ACK = "ack"
    ERROR = "error"
    REPLY = "reply"
    DRAINED = "drained"


class NodeView(TypedDict, total=False):
    """An agent's view of its node in each SAMPLE (``sample``), as the scheduler decides
    on it (odop.engine.agent.node_view writes it, odop.scheduler.cluster.Node reads it).
    Units: unix seconds, cores, 0..1 utilisation, watts, bytes."""

    t: float
    host: str
    cores: list[int]
    """The cores the agent may use."""
    util: list[float]
    """Each of those cores' utilisation over the last sample."""
    sim_bound: list[int]
    """Cores the simulation's ranks are bound to (empty: unbound)."""
    sim_use: list[float]
    """Cores' worth of CPU the ranks used on each of ``sim_bound``."""
    sim_cpu: float
    sim_n: int
    sim_expected: bool
    sim_wait: float | None
    """Seconds the ranks waited for a CPU over the last sample (run delay), per rank."""
    power_w: float | None
    power_source: str
    mem_total: int | None
    mem_available: int | None
    gpus: list[dict[str, Any]]


_opt_bool = (bool, type(None))
_opt_list_num = (ListOf(int, float), type(None))
NODE_VIEW: dict[str, tuple[type, ...]] = {
    "t": _opt_num, "host": _opt_str, "cores": (ListOf(int), type(None)), "util": _opt_list_num,
    "sim_bound": (ListOf(int), type(None)), "sim_use": _opt_list_num, "sim_cpu": _opt_num,
    "sim_n": _opt_int, "sim_expected": _opt_bool, "sim_wait": _opt_num, "power_w": _opt_num,
    "power_source": _opt_str, "mem_total": _opt_num, "mem_available": _opt_num,
    "gpus": (ListOf(dict), type(None)),
}
"""The schema of a NodeView: every key may be absent; a present one has these types."""

# field -> accepted python types (after msgpack decoding); every field listed is required,
# except those whose types include NoneType, which may be absent.
_cores = (ListOf(int),)
SCHEMA: dict[MsgType, dict[str, tuple[type, ...]]] = {
    MsgType.SUBMIT: {"execution": (str,), "task": (str,), "args": (dict,), "rank": _opt_int},
    MsgType.DECLARE: {"tasks": (ListOf(dict),)},
    MsgType.CANCEL: {"execution": (str,)},
    MsgType.STATUS: {},
    MsgType.SIM_END: {"rank": _opt_int},
    MsgType.PHASE: {"node": (str,), "rank": (int,), "phase": (str,), "active": (bool,),
                    "cores": (ListOf(int), type(None))},
    MsgType.RELAY: {"node": (str,), "routes": (ListOf(bytes),), "msgs": (ListOf(bytes),)},
    MsgType.DELIVER: {"routes": (ListOf(bytes),), "msgs": (ListOf(bytes),)},
    MsgType.HEARTBEAT: {"ref": _opt_str},
    MsgType.HELLO: {"node": (str,), "cores": _cores, "pid": (int,), "sim_pids": (ListOf(int),)},
    MsgType.SAMPLE: {"node": (str,), "sample": (dict,), "running": (ListOf(str),),
                     "sim_alive": (bool,)},
    MsgType.STARTED: {"execution": (str,), "pid": (int,), "cores": _cores, "t": _num},
    MsgType.EXITED: {
        "execution": (str,), "exit_code": _opt_int, "signal": _opt_int, "reason": (str,),
        "cpu_s": _num, "max_rss_bytes": (int,), "wall_s": _num, "t": _num,
        "energy_j": _opt_num, "power_source": _opt_str, "threads": _opt_int,
        "output_cut_bytes": _opt_int,
    },
    MsgType.START: {
        "execution": (str,), "spec": (dict,), "args": (dict,), "cores": _cores,
        "attempt": (int,), "gpus": (ListOf(int), type(None)),
        "hosts": (ListOf(dict), type(None)),
    },
    MsgType.PAUSE: {"execution": (str,)},
    MsgType.RESUME: {"execution": (str,)},
    MsgType.REPIN: {"execution": (str,), "cores": _cores},
    MsgType.KILL: {"execution": (str,), "reason": (str,)},
    MsgType.SHUTDOWN: {"reason": (str,)},
    MsgType.ACK: {"ref": (str,)},
    MsgType.ERROR: {"ref": _opt_str, "error": (str,)},
    MsgType.REPLY: {"ref": (str,), "body": (dict,)},
    MsgType.DRAINED: {"ref": (str,), "done": (int,), "failed": (int,)},
}

_TYPES = {t.value: t for t in MsgType}
CLIENT_TYPES = frozenset({MsgType.SUBMIT, MsgType.DECLARE, MsgType.CANCEL, MsgType.STATUS,
                          MsgType.SIM_END, MsgType.PHASE})
"""What a rank may send through its node's agent (RELAY carries only these)."""
_PAIRED = (MsgType.RELAY, MsgType.DELIVER)
"""Types whose ``routes`` and ``msgs`` go in pairs: the i-th message's route is the i-th."""


def new_id() -> str:
    """A fresh 128-bit message or execution id, as 32 hex characters."""
    return os.urandom(16).hex()


def make(mtype: MsgType, msg_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """Build a message map; fields are checked by :func:`validate` on the other side."""
    return {"v": VERSION, "type": mtype.value, "id": msg_id or new_id(), **fields}


def validate(msg: object) -> tuple[MsgType, Mapping[str, Any]]:
    """Check a decoded message against the schema; raise ProtocolError saying what is wrong."""
    if not isinstance(msg, dict):
        raise ProtocolError(f"message must be a map, got {type(msg).__name__}")
    if type(msg.get("v")) is not int or msg["v"] != VERSION:
        raise ProtocolError(
            f"protocol version {msg.get('v')!r:.60} not supported; expected {VERSION}")
    mtype = _TYPES.get(msg["type"]) if isinstance(msg.get("type"), str) else None
    if mtype is None:
        raise ProtocolError(
            f"unknown message type {msg.get('type')!r:.60}; allowed: {sorted(_TYPES)}")
    if not isinstance(msg.get("id"), str) or not msg["id"]:
        raise ProtocolError(f"{mtype.value}: field 'id' must be a non-empty string")
    _check(mtype.value, msg, SCHEMA[mtype])
    if mtype is MsgType.SAMPLE:
        _check("sample: view", msg["sample"], NODE_VIEW)
    if mtype in _PAIRED and len(msg["routes"]) != len(msg["msgs"]):
        raise ProtocolError(f"{mtype.value}: {len(msg['routes'])} routes for "
                            f"{len(msg['msgs'])} messages; they go in pairs")
    return mtype, msg


def _check(what: str, msg: Mapping[str, Any], schema: Mapping[str, tuple[type, ...]]) -> None:
    """Raise ProtocolError at the first field of ``msg`` that ``schema`` refuses."""
    for field, types in schema.items():
        if field not in msg:
            if type(None) in types:
                continue
            raise ProtocolError(f"{what}: missing field {field!r}")
        value = msg[field]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            allowed = "/".join(t.__name__ for t in types)
            raise ProtocolError(
                f"{what}: field {field!r} = {value!r:.60} has type "
                f"{type(value).__name__}; allowed: {allowed}"
            )
