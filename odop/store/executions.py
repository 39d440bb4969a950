"""The run's durable queue: executions, their state history, and the run's components."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack

from odop.errors import OdopError
from odop.store.db import connect
from odop.store.states import ALLOWED, ExecState

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, task TEXT NOT NULL, args BLOB NOT NULL, state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0, submitted_at REAL NOT NULL,
    not_before REAL NOT NULL DEFAULT 0, deadline REAL, attempt INTEGER NOT NULL DEFAULT 0,
    node TEXT, cores TEXT, pid INTEGER, started_at REAL, ended_at REAL,
    exit_code INTEGER, signal INTEGER, reason TEXT,
    cpu_s REAL, max_rss_bytes INTEGER, wall_s REAL, origin TEXT,
    energy_j REAL, gco2 REAL, power_source TEXT, threads INTEGER, gpus TEXT, spans TEXT,
    output_cut_bytes INTEGER);
CREATE INDEX IF NOT EXISTS executions_state ON executions(state);
CREATE TABLE IF NOT EXISTS events (
    execution TEXT NOT NULL, t REAL NOT NULL, state TEXT NOT NULL, detail TEXT);
CREATE TABLE IF NOT EXISTS components (
    role TEXT NOT NULL, node TEXT NOT NULL, pid INTEGER NOT NULL, started_at REAL NOT NULL,
    ended_at REAL, endpoint TEXT);
CREATE TABLE IF NOT EXISTS tasks (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS phases (
    t REAL NOT NULL, node TEXT NOT NULL, rank INTEGER NOT NULL, phase TEXT NOT NULL,
    active INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (
    t REAL NOT NULL, node TEXT NOT NULL, samples INTEGER NOT NULL, accuracy REAL,
    period_s REAL);
"""



class TransitionError(OdopError, ValueError):
    """A state change the life cycle does not allow."""


class RunStore:
    """Executions of one run in ``runs/<run>/odop.db``; every change is one transaction."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.conn = connect(self.path, readonly=readonly, schema="" if readonly else SCHEMA)
        if not readonly:
            self._add_columns()
        self.transactions = 0
        """Write transactions committed through this store (a measure of its load)."""

    def _add_columns(self) -> None:
        """Bring a run database made by an earlier odop up to this schema."""
        have = {r["name"] for r in self.conn.execute("PRAGMA table_info(executions)")}
        for column, kind in (("gpus", "TEXT"), ("spans", "TEXT"), ("output_cut_bytes", "INTEGER")):
            if column not in have:
                self.conn.execute(f"ALTER TABLE executions ADD COLUMN {column} {kind}")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        self.transactions += 1

    # -- executions ---------------------------------------------------------------------
    def add(self, execution: str, task: str, args: dict[str, Any], *, priority: int = 0,
            deadline: float | None = None, origin: str = "", now: float | None = None) -> bool:
        """Queue a new execution; False when the id exists already (a resent submission)."""
        now = time.time() if now is None else now
        with self.transaction() as tx:
            cur = tx.execute(
                "INSERT OR IGNORE INTO executions (id, task, args, state, priority, submitted_at,"
                " deadline, origin) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                (execution, task, msgpack.packb(args), priority, now, deadline, origin),
            )
            if cur.rowcount:
                tx.execute("INSERT INTO events VALUES (?, ?, 'queued', ?)",
                           (execution, now, origin))
        return bool(cur.rowcount)

    def transition(self, execution: str, new: ExecState, *, detail: str = "",
                   now: float | None = None, **fields: Any) -> ExecState:
        """The one way to change an execution's state; ``fields`` update its columns."""
        now = time.time() if now is None else now
        with self.transaction() as tx:
            row = tx.execute("SELECT state FROM executions WHERE id=?", (execution,)).fetchone()
            if row is None:
                raise TransitionError(f"unknown execution {execution!r}")
            old = ExecState(row["state"])
            if new not in ALLOWED[old]:
                raise TransitionError(f"execution {execution}: {old.value} -> {new.value} "
                                      f"not allowed; from {old.value}: "
                                      f"{sorted(s.value for s in ALLOWED[old])}")
            _encode_lists(fields)
            sets = "".join(f", {k}=?" for k in fields)
            tx.execute(f"UPDATE executions SET state=?{sets} WHERE id=?",
                       (new.value, *fields.values(), execution))
            tx.execute("INSERT INTO events VALUES (?, ?, ?, ?)",
                       (execution, now, new.value, detail))
        return old

    def update(self, execution: str, detail: str, **fields: Any) -> None:
        """Change an execution's columns without a state change (none: only the note),
        noted in its history."""
        _encode_lists(fields)
        sets = ", ".join(f"{k}=?" for k in fields)
        with self.transaction() as tx:
            if fields:
                tx.execute(f"UPDATE executions SET {sets} WHERE id=?",
                           (*fields.values(), execution))
            tx.execute("INSERT INTO events SELECT id, ?, state, ? FROM executions WHERE id=?",
                       (time.time(), detail, execution))

    def note(self, execution: str, detail: str) -> None:
        """Add ``detail`` to an execution's history (a decision and its reason), no change."""
        self.update(execution, detail)

    def get(self, execution: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM executions WHERE id=?", (execution,)).fetchone()
        return _row(row) if row else None

    def in_states(self, *states: ExecState) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(states))
        rows = self.conn.execute(
            f"SELECT * FROM executions WHERE state IN ({marks}) ORDER BY submitted_at, rowid",
            [s.value for s in states])
        return [_row(r) for r in rows]

    def all(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM executions ORDER BY submitted_at, rowid")
        return [_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, COUNT(*) n FROM executions GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    def history(self, execution: str) -> list[tuple[float, str, str]]:
        rows = self.conn.execute(
            "SELECT t, state, detail FROM events WHERE execution=? ORDER BY rowid", (execution,))
        return [(r["t"], r["state"], r["detail"] or "") for r in rows]

    # -- tasks, components, meta --------------------------------------------------------
    def put_tasks(self, specs: dict[str, dict[str, Any]]) -> None:
        with self.transaction() as tx:
            tx.executemany("INSERT OR REPLACE INTO tasks VALUES (?, ?)",
                           [(name, json.dumps(spec)) for name, spec in specs.items()])

    def tasks(self) -> dict[str, dict[str, Any]]:
        return {r["name"]: json.loads(r["spec"]) for r in self.conn.execute("SELECT * FROM tasks")}

    def add_component(self, role: str, node: str, pid: int, endpoint: str = "") -> int:
        with self.transaction() as tx:
            cur = tx.execute("INSERT INTO components VALUES (?, ?, ?, ?, NULL, ?)",
                             (role, node, pid, time.time(), endpoint))
        return int(cur.lastrowid or 0)

    def end_component(self, role: str, node: str, pid: int) -> None:
        with self.transaction() as tx:
            tx.execute("UPDATE components SET ended_at=? WHERE role=? AND node=? AND pid=?"
                       " AND ended_at IS NULL", (time.time(), role, node, pid))

    def components(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM components ORDER BY rowid")]

    def add_phase(self, t: float, node: str, rank: int, phase: str, active: bool) -> None:
        self.conn.execute("INSERT INTO phases VALUES (?, ?, ?, ?, ?)",
                          (t, node, rank, phase, int(active)))
        self.transactions += 1

    def add_prediction(self, t: float, node: str, samples: int, accuracy: float | None,
                       period_s: float | None) -> None:
        self.conn.execute("INSERT INTO predictions VALUES (?, ?, ?, ?, ?)",
                          (t, node, samples, accuracy, period_s))
        self.transactions += 1

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as tx:
            tx.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self) -> dict[str, Any]:
        return {r["key"]: json.loads(r["value"]) for r in self.conn.execute("SELECT * FROM meta")}


LIST_COLUMNS = ("cores", "gpus", "spans")
"""Columns holding a list (of ints; spans: of [node, cores]), as JSON text."""


def _encode_lists(fields: dict[str, Any]) -> None:
    for key in LIST_COLUMNS:
        if fields.get(key) is not None:
            fields[key] = json.dumps(fields[key])


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["args"] = msgpack.unpackb(out["args"]) if out["args"] is not None else {}
    for key in LIST_COLUMNS:
        out[key] = json.loads(out[key]) if out.get(key) else []
    out.setdefault("output_cut_bytes", None)  # an older database, read without upgrading it
    return out
