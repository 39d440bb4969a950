"""The run folder's layout: one place that names every file odop writes."""

from __future__ import annotations

import hashlib
import os
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


def resolve_run(run: str | os.PathLike[str], home: Path) -> RunPaths:
    """Find a run by path or by name under ``home/runs``; 'latest' is the newest."""
    text = str(run)
    candidates = [Path(text)] if os.sep in text else []
    if text == "latest":
        existing = sorted(p for p in runs_folder(home).glob("*") if (p / "odop.db").exists())
        candidates += existing[-1:]
    candidates.append(runs_folder(home) / text)
    for candidate in candidates:
        if (candidate / "odop.db").exists():
            return RunPaths(candidate.resolve())
    known = sorted(p.name for p in runs_folder(home).glob("*"))[-5:]
    hint = f"; recent runs: {', '.join(known)}" if known else f"; no runs under {home}/runs"
    raise OdopError(f"run {text!r} not found{hint}")
