"""The run folder's layout: one place that names every file odop writes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from odop.errors import OdopError


@dataclass(frozen=True)
class RunPaths:
    """Paths inside ``$ODOP_HOME/runs/<run>/``; the folder is private to the user (0700)."""

    root: Path

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def db(self) -> Path:
        return self.root / "odop.db"

    @property
    def scheduler_endpoint(self) -> str:
        return ipc_endpoint(self.root / "scheduler.sock")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    # One folder per execution, as plain strings: Python 3.11's pathlib interns every path
    # component it parses, and a string interned per execution id grows the interpreter's
    # table of interned strings for as long as a daemon runs (benchmarks/README.md, soak).
    def task_dir(self, execution: str) -> str:
        """Folder of one execution: stdout, stderr and its scratch files."""
        return os.path.join(self.root, "tasks", execution)

    def checkpoint_dir(self, execution: str) -> str:
        """Where a resumable execution keeps its checkpoint, the same for every attempt."""
        return os.path.join(self.root, "checkpoints", execution)

    def ranks_file(self, node: str) -> Path:
        """The ranks registered on ``node``: {rank, pid, host, cores} each."""
        return self.root / "nodes" / f"{node}.json"

    def create(self) -> RunPaths:
        for folder in (self.root, self.logs, self.samples, self.root / "tasks"):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        return self


SOCKET_PATH_MAX = 100
"""Unix socket paths are limited to 107 bytes; longer ones move to a short private folder."""


def ipc_endpoint(path: Path) -> str:
    """``ipc://`` endpoint for ``path``, or for a same-for-everyone short stand-in under
    ``/tmp/odop-<uid>/`` (0700) when the run folder is too deep for a socket path."""
    if len(str(path)) <= SOCKET_PATH_MAX:
        return f"ipc://{path}"
    short = Path(tempfile.gettempdir()) / f"odop-{os.getuid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    if short.stat().st_uid != os.getuid() or short.stat().st_mode & 0o077:
        raise OdopError(f"{short} must be a folder private to this user (mode 0700)")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:20]
    return f"ipc://{short / digest}.sock"


def new_run_name() -> str:
    """A sortable, unique run name: ``YYYYmmdd-HHMMSS-xxxx``."""
    return time.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()


def runs_folder(home: Path) -> Path:
    return home / "runs"


def created_at(root: Path) -> float | None:
    """When the run in folder ``root`` was created (unix s), as its database records it:
    meta ``started`` (written when the run is opened), else ``scheduler_started``, else
    its first component's start; None when the database records none of them."""
    from odop.store.db import connect

    try:
        conn = connect(root / "odop.db", readonly=True)
    except sqlite3.Error:
        return None
    try:
        meta = dict(conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('started', 'scheduler_started')"
        ).fetchall())
        for key in ("started", "scheduler_started"):
            if key in meta:
                return float(json.loads(meta[key]))
        row = conn.execute("SELECT MIN(started_at) FROM components").fetchone()
        return None if row is None or row[0] is None else float(row[0])
    except (sqlite3.Error, ValueError, TypeError):
        return None
    finally:
        conn.close()


def runs_by_age(home: Path) -> list[tuple[float, RunPaths]]:
    """Every run under ``home/runs`` that has a database, oldest first, by its recorded
    creation time (a run that records none: the time its folder last changed)."""
    found = []
    for folder in runs_folder(home).glob("*"):
        if (folder / "odop.db").exists():
            created = created_at(folder)
            found.append((folder.stat().st_mtime if created is None else created,
                          RunPaths(folder.resolve())))
    return sorted(found, key=lambda x: (x[0], x[1].name))


def resolve_run(run: str | os.PathLike[str], home: Path) -> RunPaths:
    """Find a run by path or by name under ``home/runs``; 'latest' is the run created last
    (by the creation time its database records, not by its name)."""
    text = str(run)
    candidates = [Path(text)] if os.sep in text else []
    if text == "latest" and not (runs_folder(home) / text / "odop.db").exists():
        runs = runs_by_age(home)
        candidates += [runs[-1][1].root] if runs else []
    candidates.append(runs_folder(home) / text)
    for candidate in candidates:
        if (candidate / "odop.db").exists():
            return RunPaths(candidate.resolve())
    known = [p.name for _, p in runs_by_age(home)][-5:]
    hint = f"; recent runs: {', '.join(known)}" if known else f"; no runs under {home}/runs"
    raise OdopError(f"run {text!r} not found{hint}")
