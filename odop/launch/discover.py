"""How ranks and agents find a run's scheduler, and whether one is already serving it.

Order: ``$ODOP_SCHEDULER`` (an endpoint), then ``<run>/scheduler.endpoint`` (written by the
scheduler when it binds), then the default ``ipc://`` socket in the run folder. Node-local
facts (which agent serves a node, which ranks live on it) are small files in the run
folder: ``agents/<node>.pid`` and ``nodes/<node>.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from odop.paths import RunPaths
from odop.procs import pid_alive
from odop.protocol import transport

SCHEDULER_ENV = "ODOP_SCHEDULER"


def scheduler_endpoint(paths: RunPaths, *, wait_s: float = 0.0) -> str:
    """The endpoint to reach the run's scheduler, waiting up to ``wait_s`` seconds for an
    announcement when neither the environment nor the run folder names one yet."""
    env = os.environ.get(SCHEDULER_ENV)
    if env:
        return env
    end = time.monotonic() + wait_s
    while True:
        found = transport.announced(paths.root)
        if found or time.monotonic() >= end:
            return found or paths.scheduler_endpoint
        time.sleep(0.02)


def live_scheduler(paths: RunPaths, node: str) -> dict[str, Any] | None:
    """The run's scheduler component if one seems alive: a live pid when it runs on this
    node, any unended record otherwise (it lives elsewhere), or ``$ODOP_SCHEDULER`` set."""
    if os.environ.get(SCHEDULER_ENV):
        return {"role": "scheduler", "endpoint": os.environ[SCHEDULER_ENV], "node": "?"}
    if not paths.db.exists() or transport.announced(paths.root) is None:
        return None
    from odop.store.executions import RunStore

    store = RunStore(paths.db, readonly=True)
    try:
        rows = [c for c in store.components() if c["role"] == "scheduler" and not c["ended_at"]]
    finally:
        store.close()
    for row in reversed(rows):
        if row["node"] != node or pid_alive(row["pid"]):
            return row
    return None


def agent_file(paths: RunPaths, node: str) -> Path:
    return paths.root / "agents" / f"{node}.pid"


def claim_agent(paths: RunPaths, node: str, pid: int, *, ready: bool = False) -> None:
    """Record that ``pid`` is the agent of ``node`` (called by the agent itself), and,
    with ``ready``, that it is done starting up (it has sampled once and its fork server
    is up): ranks with no idle core wait for that in odop.start()."""
    path = agent_file(paths, node)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    _write_atomic(path, f"{pid}{' ready' if ready else ''}\n")


def live_agent(paths: RunPaths, node: str, *, ready: bool = False) -> int | None:
    """Pid of this node's agent if one runs (and, with ``ready``, has said it is ready;
    only meaningful on ``node`` itself)."""
    try:
        words = agent_file(paths, node).read_text().split()
        pid = int(words[0])
    except (OSError, ValueError, IndexError):
        return None
    if ready and words[1:] != ["ready"]:
        return None
    return pid if pid_alive(pid) else None


def wait_agent_ready(paths: RunPaths, node: str, wait_s: float, poll_s: float = 0.02) -> bool:
    """Wait up to ``wait_s`` seconds, sleeping, for this node's live agent to be ready."""
    end = time.monotonic() + wait_s
    while live_agent(paths, node, ready=True) is None:
        if time.monotonic() >= end:
            return False
        time.sleep(poll_s)
    return True


def write_ranks(paths: RunPaths, node: str, ranks: list[dict[str, Any]]) -> Path:
    """``nodes/<node>.json``: every rank on a node as {rank, pid, host, cores}."""
    path = paths.ranks_file(node)
    path.parent.mkdir(mode=0o700, exist_ok=True)
    _write_atomic(path, json.dumps({"node": node, "ranks": ranks, "t": time.time()}))
    return path


def read_ranks(paths: RunPaths, node: str) -> list[dict[str, Any]]:
    """The ranks registered on ``node`` (empty when none are, or the file is unreadable)."""
    try:
        ranks = json.loads(paths.ranks_file(node).read_text())["ranks"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return ranks if isinstance(ranks, list) else []


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
