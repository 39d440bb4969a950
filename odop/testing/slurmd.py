"""Slurm on the virtual cluster: munged, slurmctld on node 1, one slurmd per node.

Debian's ``slurm-wlm`` and ``munge`` packages, configured here for a container: no cgroup
plugin (``proctrack/linuxproc``, ``task/none``: a step's tasks inherit their node's cpuset,
so ``--cpu-bind`` is accepted and the node's cores are what a rank gets), one partition
``odop`` with every node, ``mpi/pmi2`` by default (MPICH and Open MPI both speak it),
daemons as root, everything under ``<state>/munge`` and ``<state>/slurm``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol


class ClusterError(RuntimeError):
    """The cluster cannot be brought up here; the message says why."""


class Cluster(Protocol):
    """What Slurm's start needs of a cluster (odop.testing.cluster.Cluster)."""

    slurm: bool
    daemons: dict[str, int]
    memory: int

    @property
    def state(self) -> Path: ...

    @property
    def slurm_conf(self) -> Path: ...

    @property
    def nodes(self) -> Sequence[Any]: ...

    def save(self) -> None: ...

    def popen(self, node: Any, command: Sequence[str], **kwargs: Any) -> Any: ...

    def run(self, node: Any, command: Sequence[str], *, timeout: float = 60,
            check: bool = True, **kwargs: Any) -> Any: ...


DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue")
PARTITION = "odop"


def unavailable() -> str | None:
    """Why Slurm cannot run here (missing programs), or None."""
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        return (f"missing {', '.join(missing)} (Debian: apt-get install slurm-wlm munge, "
                "as .ci/run does when it runs as root)")
    return None


def start(cluster: Cluster) -> None:
    """Start munged, slurmctld and the slurmds; return once every node is idle."""
    reason = unavailable()
    if reason:
        raise ClusterError(f"Slurm: {reason}")
    cluster.slurm = True
    munge = cluster.state / "munge"
    slurm = cluster.state / "slurm"
    for folder in (munge, slurm, slurm / "ctld"):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _start_munge(cluster, munge)
    cluster.slurm_conf.write_text(config(cluster))
    head = cluster.nodes[0]
    cluster.daemons["slurmctld"] = _daemon(cluster, head.name, [
        "slurmctld", "-D", "-i", "-f", str(cluster.slurm_conf)], slurm / "slurmctld.out")
    for node in cluster.nodes:
        cluster.daemons[f"slurmd-{node.name}"] = _daemon(cluster, node.name, [
            "slurmd", "-D", "-N", node.name, "-f", str(cluster.slurm_conf)],
            slurm / f"slurmd-{node.name}.out")
    cluster.save()
    _wait_idle(cluster)


def _start_munge(cluster: Cluster, munge: Path) -> None:
    key = munge / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    proc = subprocess.Popen(
        ["munged", "--foreground", "--force", f"--key-file={key}",
         f"--socket={socket_path(cluster)}", f"--pid-file={munge / 'munged.pid'}",
         f"--log-file={munge / 'munged.log'}", f"--seed-file={munge / 'munged.seed'}"],
        start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT)
    cluster.daemons["munged"] = proc.pid
    _wait(lambda: socket_path(cluster).exists(), proc, "munged", munge / "munged.log")


def socket_path(cluster: Cluster) -> Path:
    return cluster.state / "munge" / "munge.socket"


def _daemon(cluster: Cluster, node: str, argv: list[str], log: Path) -> int:
    with log.open("ab") as out:
        proc = cluster.popen(node, argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, start_new_session=True)
    return proc.pid


def _wait(ready: object, proc: subprocess.Popen[bytes], what: str, log: Path,
          timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not ready():  # type: ignore[operator]
        if proc.poll() is not None or time.monotonic() > deadline:
            text = log.read_text()[-2000:] if log.exists() else ""
            raise ClusterError(f"{what} did not start (rc {proc.poll()}): {text}")
        time.sleep(0.05)


def _wait_idle(cluster: Cluster, timeout_s: float = 60) -> None:
    """Until sinfo shows every node idle (ClusterError with the daemons' logs if not)."""
    deadline = time.monotonic() + timeout_s
    states = ""
    while time.monotonic() < deadline:
        done = cluster.run(1, ["sinfo", "-h", "-N", "-o", "%N %t"], check=False)
        states = done.stdout + done.stderr
        idle = {ln.split()[0] for ln in done.stdout.splitlines() if ln.split()[1:] == ["idle"]}
        if idle >= {n.name for n in cluster.nodes}:
            return
        time.sleep(0.2)
    logs = "\n".join(f"{p.name}: {p.read_text()[-800:]}"
                     for p in sorted((cluster.state / "slurm").glob("*.out")))
    raise ClusterError(f"Slurm nodes not idle after {timeout_s:.0f} s: {states}\n{logs}")


def config(cluster: Cluster) -> str:
    """slurm.conf for the cluster (Slurm 22.05 keys)."""
    slurm = cluster.state / "slurm"
    head = cluster.nodes[0]
    mem_mb = cluster.memory >> 20
    lines = [
        "ClusterName=odop",
        f"SlurmctldHost={head.name}({head.addr})",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={socket_path(cluster)}",
        f"StateSaveLocation={slurm / 'ctld'}",
        f"SlurmdSpoolDir={slurm}/spool-%n",
        f"SlurmctldPidFile={slurm}/slurmctld.pid",
        f"SlurmdPidFile={slurm}/slurmd-%n.pid",
        f"SlurmctldLogFile={slurm}/slurmctld.log",
        f"SlurmdLogFile={slurm}/slurmd-%n.log",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "MpiDefault=pmi2",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "MinJobAge=600",
        "KillWait=5",
        "InactiveLimit=0",
    ]
    for node in cluster.nodes:
        lines.append(f"NodeName={node.name} NodeAddr={node.addr} CPUs={len(node.cpus)} "
                     f"RealMemory={mem_mb} State=UNKNOWN")
    lines.append(f"PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE "
                 "OverSubscribe=NO State=UP")
    return "\n".join(lines) + "\n"
