"""The executions table's ``output_cut_bytes`` (bytes cut from an execution's stdout and
stderr): carried by ``exited``, stored, and added to a run database made before it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from odop.errors import ProtocolError
from odop.protocol import MsgType, make, validate
from odop.store.executions import RunStore
from odop.store.states import ExecState

OLD_SCHEMA = """CREATE TABLE executions (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, args BLOB NOT NULL, state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0, submitted_at REAL NOT NULL,
    not_before REAL NOT NULL DEFAULT 0, deadline REAL, attempt INTEGER NOT NULL DEFAULT 0,
    node TEXT, cores TEXT, pid INTEGER, started_at REAL, ended_at REAL,
    exit_code INTEGER, signal INTEGER, reason TEXT,
    cpu_s REAL, max_rss_bytes INTEGER, wall_s REAL, origin TEXT,
    energy_j REAL, gco2 REAL, power_source TEXT, threads INTEGER);
INSERT INTO executions (id, task, args, state, submitted_at) VALUES ('e0', 't', x'80', 'done', 1);
"""


def test_an_older_database_gains_the_column(tmp_path: Path) -> None:
    db = tmp_path / "odop.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(OLD_SCHEMA)
    old = RunStore(db, readonly=True)  # read as it is (odop status on an old run)
    assert old.get("e0")["output_cut_bytes"] is None  # type: ignore[index]
    old.close()
    store = RunStore(db)
    store.add("e1", "t", {})
    store.transition("e1", ExecState.PLACED, node="n", cores=[0])
    store.transition("e1", ExecState.RUNNING)
    store.transition("e1", ExecState.FAILED, reason="time limit exceeded", output_cut_bytes=12345)
    assert store.get("e1")["output_cut_bytes"] == 12345  # type: ignore[index]
    assert store.get("e0")["output_cut_bytes"] is None  # type: ignore[index]
    store.close()


def test_exited_carries_the_cut_or_nothing() -> None:
    base = {"execution": "e1", "exit_code": 0, "signal": None, "reason": "ok", "cpu_s": 1.0,
            "max_rss_bytes": 10, "wall_s": 1.0, "t": 2.0}
    validate(make(MsgType.EXITED, **base))
    validate(make(MsgType.EXITED, **base, output_cut_bytes=5))
    with pytest.raises(ProtocolError, match="'output_cut_bytes' = '5' has type str"):
        validate(make(MsgType.EXITED, **base, output_cut_bytes="5"))
