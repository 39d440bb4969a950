"""``SQLiteTriggerState``: trigger state in a SQLite file (WAL mode), safe across restarts."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SQLiteTriggerState"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS trigger_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID
"""


class SQLiteTriggerState:
    """A TriggerState stored in table ``trigger_state`` of the SQLite file ``path``.

    The file may be shared with other tables (the run database); every ``update`` is one
    transaction, so a process killed at any instant leaves the previous or the new state.
    """

    def __init__(self, path: str, *, timeout_s: float = 10.0) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM trigger_state WHERE key = ?",
                                   (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def items(self, prefix: str) -> dict[str, Any]:
        # keys in [prefix, prefix + U+10FFFF) start with prefix (a range scan on the key)
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM trigger_state WHERE key >= ? AND key < ?",
                (prefix, prefix + "\U0010ffff")).fetchall()
        return {k: json.loads(v) for k, v in rows if k.startswith(prefix)}

    def update(self, values: Mapping[str, Any], delete: Iterable[str] = ()) -> None:
        rows = [(k, json.dumps(v)) for k, v in values.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO trigger_state (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value", rows)
                self._db.executemany("DELETE FROM trigger_state WHERE key = ?",
                                     [(k,) for k in delete])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()
