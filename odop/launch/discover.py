"""How ranks and agents find a run's scheduler, and whether one is already serving it.

Order: ``$ODOP_SCHEDULER`` (an endpoint), then ``<run>/scheduler.endpoint`` (written by the
scheduler when it binds), then the default ``ipc://`` socket in the run folder. Node-local
facts (which agent serves a node, which ranks live on it) are small files in the run
folder: ``agents/<node>.pid`` and ``nodes/<node>.json``. Inside a Slurm job, the ranks of
this node are also found as the tasks of the job's other steps (:func:`step_ranks`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from odop.errors import OdopError
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


def require_reachable(endpoint: str, node: str, wait_s: float) -> None:
    """For a ``tcp://`` endpoint, raise OdopError unless a TCP connection to it opens within
    ``wait_s`` seconds (retried): ZeroMQ itself would retry in silence forever. The
    connection is closed before any greeting, so the scheduler keeps no trace of it."""
    if not endpoint.startswith("tcp://"):
        return
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    end = time.monotonic() + wait_s
    while True:
        left = end - time.monotonic()
        try:
            with socket.create_connection((host.strip("[]"), int(port)),
                                          timeout=min(2.0, max(0.2, left))):
                return
        except OSError as exc:
            if left <= 0:
                raise OdopError(
                    f"node {node} cannot reach the scheduler at {endpoint} ({exc or 'timed out'}; "
                    f"tried for {wait_s:g} s, --wait): is port {port} dropped or rejected by a "
                    f"packet filter between the nodes, or does {host} not name the "
                    "scheduler's node here?") from exc
            time.sleep(0.2)


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


def require_shared(paths: RunPaths, node: str) -> None:
    """Raise OdopError when ``node`` does not see the run that another node created (its
    database): the run folder is not on a file system every node sees, so this node's
    agent would find neither the scheduler's endpoint nor the run's keys."""
    if not paths.db.exists():
        raise OdopError(
            f"node {node} does not see the run folder {paths.root} (no {paths.db.name} "
            f"there): the run was created on another node, and $ODOP_HOME "
            f"({paths.root.parent.parent}) must be on a file system every node of the job "
            "sees (a home, project or scratch file system, not a node-local /tmp)")


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


DAEMONS = frozenset({"orted", "prted", "hydra_pmi_proxy"})
"""Per-node daemons of MPI launchers (Open MPI 4, Open MPI 5 / PRRTE, MPICH's Hydra): under
Slurm, ``mpirun``/``mpiexec`` ``srun`` one on each other node, and the ranks are its
children there."""


class StepRanks:
    """This node's tasks of the other steps of the Slurm job the caller runs in: the ranks an
    ``srun`` launched, which are children of ``slurmstepd``, not of ``srun``, or, when such a
    task is an MPI launcher's daemon (:data:`DAEMONS`, e.g. Open MPI's ``orted`` on the nodes
    other than ``mpirun``'s), its children.

    A step's task is a process whose parent is ``slurmstepd`` and whose environment holds
    this job's ``SLURM_JOB_ID``, this node's ``SLURMD_NODENAME`` and a ``SLURM_STEP_ID``
    other than the caller's own (the batch script has none, odop's tasks carry
    ``ODOP_EXECUTION``). Each call reads the environment of ``slurmstepd``'s children only;
    other processes are remembered.
    """

    def __init__(self, env: dict[str, str] | None = None, proc: Path = Path("/proc")) -> None:
        env = dict(os.environ) if env is None else env
        self.job, self.node = env.get("SLURM_JOB_ID"), env.get("SLURMD_NODENAME")
        self.own_step = env.get("SLURM_STEP_ID")
        self.proc = proc
        self._other: set[int] = set()  # not slurmstepd, its child or a daemon's: never a rank

    def __call__(self) -> list[int]:
        """Pids of the ranks alive now (empty outside a Slurm job)."""
        if not self.job:
            return []
        pids = {int(p.name) for p in self.proc.iterdir() if p.name.isdigit()}
        self._other &= pids
        stats = {p: s for p in pids - self._other if (s := self._stat(p)) is not None}
        stepd = {p for p, (comm, _) in stats.items() if comm == "slurmstepd"}
        tasks = {p for p, (comm, ppid) in stats.items()
                 if ppid in stepd and comm != "slurmstepd" and self._in_other_step(p)}
        daemons = {p for p in tasks if stats[p][0] in DAEMONS}
        ranks = (tasks - daemons) | {p for p, (_, ppid) in stats.items() if ppid in daemons}
        self._other |= {p for p, (comm, ppid) in stats.items()
                        if ppid not in stepd | daemons and comm != "slurmstepd"}
        return sorted(ranks)

    def _stat(self, pid: int) -> tuple[str, int] | None:
        """(command name, parent pid) of a process, None when it is gone."""
        try:
            stat = (self.proc / str(pid) / "stat").read_text()
            return stat[stat.index("(") + 1:stat.rindex(")")], int(stat[stat.rindex(")") + 2:]
                                                                    .split()[1])
        except (OSError, ValueError, IndexError):
            return None

    def _in_other_step(self, pid: int) -> bool:
        try:
            raw = (self.proc / str(pid) / "environ").read_bytes()
        except OSError:
            return False
        env = dict(item.partition(b"=")[::2] for item in raw.split(b"\0") if item)
        step = env.get(b"SLURM_STEP_ID")
        return (env.get(b"SLURM_JOB_ID", b"").decode() == self.job and step is not None
                and step.decode() != self.own_step and b"ODOP_EXECUTION" not in env
                and (self.node is None or env.get(b"SLURMD_NODENAME", b"").decode() == self.node))


step_ranks = StepRanks()
"""This process's :class:`StepRanks` (reads its own environment once, at import)."""


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
