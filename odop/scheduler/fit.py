"""How the decider fits one execution: on nodes with the GPUs and memory it needs, over
several nodes at once, and what no node of the run could ever hold. Functions of the
:class:`~odop.scheduler.core.Decider` they are given (its nodes, threshold and placement).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from odop.scheduler.cluster import Node
from odop.scheduler.freeindex import FreeIndex
from odop.scheduler.placement import Placement
from odop.scheduler.selection import Queue
from odop.tasks.units import format_memory


class Decider(Protocol):
    """What these functions read of the decider (odop.scheduler.core.Decider)."""

    nodes: dict[str, Node]
    pending: Queue
    specs: dict[str, dict[str, Any]]
    placement: Placement
    memory_reserve: float

    @property
    def busy_threshold(self) -> float: ...


def never_fit(d: Decider) -> dict[str, str]:
    """Queued executions no node could ever run, each with why: more cores (at least),
    GPUs or memory (its declared minimum, less the reserve) than the largest node has.
    Meaningful once every node is known."""
    if not d.nodes:
        return {}
    nodes = d.nodes.values()
    most_cores = max(len(n.cores) for n in nodes)
    most_gpus = max(len(n.gpus) for n in nodes)
    most_mem = max((1 - d.memory_reserve) * (n.mem_total or math.inf) for n in nodes)
    out = {}
    for p in d.pending.values():
        spec = d.specs.get(p.task)
        if spec is None:
            continue
        cores, _, gpus, memory, n_nodes = wanted(spec)
        if n_nodes > len(d.nodes):
            out[p.execution] = f"needs {n_nodes} nodes; the run has {len(d.nodes)}"
        elif cores > most_cores:
            out[p.execution] = (f"needs {cores} cores on one node; the largest node has "
                                f"{most_cores}")
        elif gpus > most_gpus:
            out[p.execution] = (f"needs {gpus} GPU(s) on one node; the most any node has "
                                f"is {most_gpus}")
        elif memory > most_mem:
            out[p.execution] = (f"needs {format_memory(memory)} of memory on one node; the "
                                f"most any node offers is {format_memory(most_mem)} (its "
                                f"total less memory_reserve_pct)")
    return out

def with_gpus(d: Decider, free: FreeIndex, lo: int, hi: int, n_gpus: int,
                     need: int) -> tuple[tuple[str, list[int]] | None, list[int]]:
    """The placement's choice among the nodes with ``n_gpus`` GPUs free (all nodes when
    0) and ``need`` bytes of memory, telling a placement that weighs GPUs how many each
    node has; and the GPUs."""
    gpus_free = {name: node.free_gpus(d.busy_threshold)
                 for name, node in d.nodes.items() if node.gpus}
    if d.placement.weighs_gpus:
        d.placement.free_gpus = {name: len(g) for name, g in gpus_free.items()}
    where: Mapping[str, Sequence[int]] = free
    if n_gpus:
        where = {name: free[name] for name, g in gpus_free.items()
                 if len(g) >= n_gpus and name in free}
    if need:
        where = roomy(d, where, need)
    choice = place_where(d, where, lo, hi)
    return choice, gpus_free[choice[0]][:n_gpus] if choice and n_gpus else []

def across(d: Decider, free: FreeIndex, lo: int, hi: int, n: int,
                  need: int) -> list[tuple[str, list[int]]] | None:
    """The first ``n`` nodes, in order, with ``lo`` cores (and ``need`` bytes) free,
    each granted the same count of its lowest free cores: as many as every one of
    them has, at most ``hi``; None when fewer nodes have room."""
    picked: list[str] = []
    name = free.first(lo)
    while name is not None and len(picked) < n:
        if not need or holds(d, name, need):
            picked.append(name)
        after = free.first(lo, free.position(name) + 1)
        name = after if after is not None and free.position(after) > free.position(name) \
            else None  # first() wraps around: past the last node
    if len(picked) < n:
        return None
    width = min([hi, *(len(free[name]) for name in picked)])
    return [(name, list(free[name][:width])) for name in picked] if width >= lo else None

def place_where(d: Decider, where: Mapping[str, Sequence[int]], lo: int,
                 hi: int) -> tuple[str, list[int]] | None:
    return d.placement.place(where, lo, hi) if where else None

def holds(d: Decider, node: str, need: int) -> bool:
    """True when ``node`` has ``need`` bytes of memory to give."""
    return d.nodes[node].mem_free(d.memory_reserve) >= need

def roomy(d: Decider, where: Mapping[str, Sequence[int]],
           need: int) -> dict[str, Sequence[int]]:
    """The nodes of ``where`` with ``need`` bytes of memory to give."""
    return {name: cores for name, cores in where.items() if holds(d, name, need)}


def wanted(spec: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(cores at least, cores at most, GPUs, bytes of memory at least, nodes) to grant;
    cores, GPUs and memory are per node."""
    return (*cores_wanted(spec), int(spec.get("gpus") or 0), int(spec.get("memory_min") or 0),
            max(1, int(spec.get("nodes") or 1)))


def cores_wanted(spec: dict[str, Any]) -> tuple[int, int]:
    """Whole cores to grant, as (at least, at most), from the spec's cpus min/max."""
    low = max(1, math.ceil(spec.get("cpus_min", 1.0) - 1e-9))
    high = max(low, math.floor(spec.get("cpus_max", low) + 1e-9))
    return low, high
