"""What a Slurm job's environment says about its allocation, and its end from the controller.

Read (docs/slurm.md lists them with examples):

- ``SLURM_JOB_ID`` (required: without it there is no allocation);
- ``SLURM_JOB_NODELIST`` (else ``SLURM_NODELIST``): compressed host list, e.g.
  ``nid[001-003,007],gpu[01-02]-ib``;
- ``SLURM_JOB_CPUS_PER_NODE``: e.g. ``64(x2),32``, aligned with the node list;
- ``SLURM_GPUS_ON_NODE`` (GPUs on this node) and ``SLURM_JOB_GPUS`` (their ids, ``0,1``);
- ``SLURM_JOB_END_TIME`` (unix seconds) if set; else ``SLURM_JOB_START_TIME`` (unix
  seconds) plus the time limit from ``SLURM_JOB_TIME_LIMIT`` or ``SBATCH_TIMELIMIT``
  (Slurm's formats: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``,
  ``D-HH:MM:SS``; ``UNLIMITED`` means no end).

When none of these gives the end (Debian's Slurm 22.05 sets none of them in a job), the end
is asked of the controller: ``squeue -h -j $SLURM_JOB_ID -o %e``.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from odop.errors import ConfigError


@dataclass(frozen=True)
class Allocation:
    """A Slurm job's resources; times in unix seconds, None when unknown."""

    job_id: str
    nodes: list[str]
    cpus_per_node: list[int] = field(default_factory=list)
    """Cores per node, aligned with ``nodes`` (empty when Slurm does not say)."""
    gpus_on_node: int | None = None
    gpu_ids: list[str] = field(default_factory=list)
    start: float | None = None
    end: float | None = None

    @property
    def end_time(self) -> float | None:
        """Alias of ``end`` (unix seconds), the name the scheduler reads."""
        return self.end

    def remaining_s(self, now: float) -> float | None:
        """Seconds left before the allocation ends (None: no known end)."""
        return None if self.end is None else max(0.0, self.end - now)


def check_host(host: str, env: Mapping[str, str] = os.environ) -> None:
    """Inside a Slurm job, raise ConfigError when ``host`` (this node's host name: odop names
    nodes, and starts MPI tasks over them, by host name) is not in the job's node list; its
    short name (before the first dot) counts. Outside a job, or with no node list, nothing."""
    found = allocation(env, ask_controller=False)
    if found is None or not found.nodes or host in found.nodes \
            or host.split(".")[0] in found.nodes:
        return
    slurm = env.get("SLURMD_NODENAME")
    raise ConfigError(
        f"this node's host name {host!r} is not in the job's node list "
        f"({', '.join(found.nodes)}, from SLURM_JOB_NODELIST)"
        + (f"; Slurm calls this node {slurm!r}" if slurm else "")
        + ": odop names nodes and launches MPI tasks on them by host name, so each node's "
        "host name (or its short name) must be its Slurm NodeName")


SQUEUE_TIMEOUT_S = 5.0


def allocation(env: Mapping[str, str] = os.environ, *,
               ask_controller: bool | None = None) -> Allocation | None:
    """The current job's allocation from ``env``, or None outside a Slurm job. With no end in
    ``env``, the controller is asked (``ask_controller``; by default only when ``env`` is
    this process's own environment)."""
    job = env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID")
    if not job:
        return None
    nodes = expand_nodelist(env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or "")
    cpus = expand_counts(env.get("SLURM_JOB_CPUS_PER_NODE", ""))
    gpus = env.get("SLURM_GPUS_ON_NODE")
    ids = [g for g in env.get("SLURM_JOB_GPUS", "").split(",") if g]
    start = _float(env, "SLURM_JOB_START_TIME")
    end = _float(env, "SLURM_JOB_END_TIME")
    if end is None and start is not None:
        limit = env.get("SLURM_JOB_TIME_LIMIT") or env.get("SBATCH_TIMELIMIT")
        seconds = parse_time_limit(limit) if limit else None
        end = None if seconds is None else start + seconds
    if end is None and (env is os.environ if ask_controller is None else ask_controller):
        end = end_from_controller(job)
    return Allocation(job, nodes, cpus, int(gpus) if gpus and gpus.isdigit() else None, ids,
                      start, end)


def end_from_controller(job_id: str) -> float | None:
    """The job's end (unix seconds) as ``squeue`` reports it; None when it has none
    (``UNLIMITED``), or squeue is missing, fails or does not answer in 5 s."""
    try:
        done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%e"], capture_output=True,
                              text=True, timeout=SQUEUE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_squeue_time(done.stdout) if done.returncode == 0 else None


def parse_squeue_time(text: str) -> float | None:
    """``2025-06-01T12:30:00`` (the controller's local time) to unix seconds; None for
    ``N/A``, ``Unknown``, ``NONE`` or an empty answer."""
    try:
        return time.mktime(time.strptime(text.strip(), "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _float(env: Mapping[str, str], key: str) -> float | None:
    value = env.get(key)
    if not value:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise ConfigError(f"{key} = {value!r} must be unix seconds") from exc


def _split_top(text: str) -> list[str]:
    """Split on commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def _ranges(spec: str, source: str) -> list[str]:
    out: list[str] = []
    for item in spec.split(","):
        lo, sep, hi = item.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ConfigError(f"node list {source!r}: bad range {item!r}; allowed: N or N-M")
        if not sep:
            out.append(lo)
            continue
        width = len(lo) if lo.startswith("0") else 0
        out += [str(n).zfill(width) for n in range(int(lo), int(hi) + 1)]
    return out


def expand_nodelist(text: str) -> list[str]:
    """``nid[001-003,007],login1`` -> ``[nid001, nid002, nid003, nid007, login1]``."""
    nodes: list[str] = []
    for item in _split_top(text):
        nodes += _expand_one(item, text)
    return nodes


def _expand_one(item: str, source: str) -> list[str]:
    match = re.search(r"\[([^\]]*)\]", item)
    if match is None:
        if "[" in item or "]" in item:
            raise ConfigError(f"node list {source!r}: unbalanced brackets in {item!r}")
        return [item]
    head, tail = item[:match.start()], item[match.end():]
    return [head + n + rest for n in _ranges(match.group(1), source)
            for rest in _expand_one(tail, source)]


def expand_counts(text: str) -> list[int]:
    """``64(x2),32`` -> ``[64, 64, 32]``."""
    out: list[int] = []
    for item in _split_top(text):
        match = re.fullmatch(r"(\d+)(?:\(x(\d+)\))?", item)
        if match is None:
            raise ConfigError(f"SLURM_JOB_CPUS_PER_NODE item {item!r}; allowed: N or N(xK)")
        out += [int(match.group(1))] * int(match.group(2) or 1)
    return out


def parse_time_limit(text: str) -> float | None:
    """Slurm time limit to seconds; None for UNLIMITED/INFINITE."""
    value = text.strip()
    if value.upper() in ("UNLIMITED", "INFINITE"):
        return None
    days, sep, rest = value.partition("-")
    if not sep:
        days, rest = "0", value
    parts = rest.split(":")
    if not days.isdigit() or not all(p.isdigit() for p in parts) or len(parts) > 3:
        raise ConfigError(f"time limit {text!r}; allowed: MM, MM:SS, HH:MM:SS, D-HH, "
                          "D-HH:MM, D-HH:MM:SS or UNLIMITED")
    nums = [int(p) for p in parts]
    if sep:  # D-HH, D-HH:MM, D-HH:MM:SS
        h, m, s = (nums + [0, 0])[:3]
    elif len(nums) == 3:  # HH:MM:SS
        h, m, s = nums
    else:  # MM, MM:SS
        h, m, s = 0, nums[0], (nums + [0])[1]
    return float(int(days) * 86400 + h * 3600 + m * 60 + s)
