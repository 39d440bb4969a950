"""SQLite connections in WAL mode: one writer (the scheduler), any number of readers."""

from __future__ import annotations

import sqlite3
from pathlib import Path

CACHE_KIB = 128
"""Page cache of each writable connection (KiB): the scheduler's memory stays flat as the
run's database grows."""


def connect(path: Path | str, *, readonly: bool = False, schema: str = "") -> sqlite3.Connection:
    """Open a database, creating ``schema`` when writable; autocommit, explicit transactions."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10, isolation_level=None)
    else:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")  # bounded memory however long the run
        if schema:
            conn.executescript(schema)
    conn.row_factory = sqlite3.Row
    return conn
