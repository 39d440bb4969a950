"""Load a finished (or running) run into plain records and numpy arrays.

Units: times are unix seconds, utilisation is 0..1 per core, CPU is in cores
(1.0 = one core fully busy), power in watts, memory in bytes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from odop.errors import OdopError
from odop.store.executions import RunStore


class ReportError(OdopError, ValueError):
    """A run folder that cannot be read into a report."""


@dataclass
class NodeSamples:
    """One node's observer samples as arrays; sample i covers [t[i] - dt[i], t[i]]."""

    node: str
    t: np.ndarray
    dt: np.ndarray
    core_ids: list[int]
    util: np.ndarray
    """[time x core] utilisation 0..1, columns in ``core_ids`` order."""
    sim_cpu: np.ndarray
    """CPU of the simulation's processes on the node (cores)."""
    sim_cores: list[int]
    watts: np.ndarray
    """Node power (W), total of every component the observer measured."""
    power_source: str
    """How the power was obtained, e.g. 'cpu:rapl+gpu:nvml' or 'cpu:model'."""

    @property
    def busy(self) -> np.ndarray:
        """CPU used on the node in each sample (cores)."""
        return self.util.sum(axis=1) if self.util.size else np.zeros(self.t.size)

    def edges(self) -> np.ndarray:
        """Interval edges (unix s): len(t) + 1 values."""
        if not self.t.size:
            return self.t
        return np.concatenate([[self.t[0] - self.dt[0]], self.t])


@dataclass(frozen=True)
class Phase:
    """One interval of a named simulation phase on one rank (unix s)."""

    name: str
    node: str
    rank: int
    start: float
    end: float


@dataclass
class RunData:
    """Everything a report or a live view reads from one run folder."""

    name: str
    root: Path
    meta: dict[str, Any]
    components: list[dict[str, Any]]
    executions: list[dict[str, Any]]
    events: list[tuple[str, float, str, str]]
    """(execution, t, state, detail) in time order."""
    nodes: dict[str, NodeSamples] = field(default_factory=dict)
    phases: list[Phase] | None = None
    """None when the run recorded no phases (not the same as an empty list)."""
    predictions: list[dict[str, Any]] | None = None
    """None when the run recorded no prediction accuracy."""

    @property
    def started(self) -> float | None:
        """When the run started (meta 'started'), else its first event."""
        t = self.meta.get("started")
        if t is None and self.events:
            t = self.events[0][1]
        return None if t is None else float(t)

    @property
    def sim_end(self) -> float | None:
        t = self.meta.get("sim_end")
        return None if t is None else float(t)

    def cores_per_node(self) -> dict[str, int]:
        """Cores per node: the observer's count, else one more than the highest granted."""
        out = {n: len(s.core_ids) for n, s in self.nodes.items() if s.core_ids}
        for e in self.executions:
            node = e["node"]
            if node and node not in self.nodes and e["cores"]:
                out[node] = max(out.get(node, 0), max(e["cores"]) + 1)
        return out

    def ended(self) -> bool:
        """Whether the run is over: a scheduler was recorded and every one has ended."""
        scheds = [c for c in self.components if c["role"] == "scheduler"]
        return bool(scheds) and all(c["ended_at"] for c in scheds)


def load_run(run_dir: Path | str, *, samples: bool = True) -> RunData:
    """Read ``run_dir`` (a ``runs/<run>`` folder); ``samples=False`` skips observer files."""
    root = Path(run_dir)
    db = root / "odop.db"
    if not db.exists():
        raise ReportError(f"run folder {root}: no odop.db; expected a runs/<run> folder")
    store = RunStore(db, readonly=True)
    try:
        meta = store.meta()
        data = RunData(str(meta.get("run") or root.name), root, meta, store.components(),
                       store.all(), _events(store.conn))
        data.phases = _phases(store.conn, meta)
        data.predictions = _predictions(store.conn, meta)
    finally:
        store.close()
    if samples:
        data.nodes = load_samples(root)
    return data


def _events(conn: sqlite3.Connection) -> list[tuple[str, float, str, str]]:
    rows = conn.execute("SELECT execution, t, state, detail FROM events ORDER BY t, rowid")
    return [(r["execution"], float(r["t"]), r["state"], r["detail"] or "") for r in rows]


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                       (name,)).fetchone()
    return row is not None


def _phases(conn: sqlite3.Connection, meta: dict[str, Any]) -> list[Phase] | None:
    """Phase intervals from the run's ``phases`` marks (t, node, rank, phase, active);
    None when the simulation marked none."""
    marks = ([dict(r) for r in conn.execute("SELECT * FROM phases ORDER BY t, rowid")]
             if _has_table(conn, "phases") else [])
    return phases_from_marks(marks, end=meta.get("sim_end")) if marks else None


def phases_from_marks(marks: list[dict[str, Any]], end: float | None = None) -> list[Phase]:
    """Pair enter/leave marks into intervals; marks with 'start'/'end' are taken as they are.

    A mark is {t, node, rank, phase, active}; a phase still open at the last mark ends
    at ``end`` (the simulation's end) or at the last mark's time.
    """
    out: list[Phase] = []
    open_: dict[tuple[str, int, str], float] = {}
    last = max((float(m.get("t", m.get("end", 0)) or 0) for m in marks), default=0.0)
    for m in marks:
        name, node, rank = str(m.get("phase", m.get("name", "?"))), str(m.get("node", "")), \
            int(m.get("rank", 0))
        if "start" in m and "end" in m:
            out.append(Phase(name, node, rank, float(m["start"]), float(m["end"])))
            continue
        key = (node, rank, name)
        if m.get("active", True):
            open_.setdefault(key, float(m["t"]))
        elif key in open_:
            out.append(Phase(name, node, rank, open_.pop(key), float(m["t"])))
    stop = float(end) if end is not None else last
    out += [Phase(k[2], k[0], k[1], t0, max(stop, t0)) for k, t0 in open_.items()]
    return sorted(out, key=lambda p: (p.start, p.rank))


def _predictions(conn: sqlite3.Connection, meta: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The idle predictor's accuracy as the scheduler recorded it (t, node, samples,
    accuracy, period_s); None when nothing was recorded."""
    rows = ([dict(r) for r in conn.execute("SELECT * FROM predictions ORDER BY t")]
            if _has_table(conn, "predictions") else [])
    return rows or None


def load_samples(root: Path) -> dict[str, NodeSamples]:
    """Every node's observer samples in the run folder ``root`` (none: an empty dict)."""
    from odop_obs import ObsConfigError, read_samples

    per_node: dict[str, list[dict[str, Any]]] = {}
    try:
        for sample in read_samples(root):
            per_node.setdefault(sample["node"], []).append(sample)
    except ObsConfigError:  # no record files: the run kept no samples
        return {}
    return {node: node_arrays(node, sorted(s, key=lambda x: x["t"]))
            for node, s in per_node.items()}


def core_util(sample: dict[str, Any]) -> tuple[list[int], list[float]]:
    """(core ids, utilisation 0..1) of one sample, from either sample layout."""
    old = (sample.get("system") or {}).get("cpu") or {}
    flat = sample.get("cpu") or {}
    if "util" in old:
        util = [float(u) for u in old["util"]]
    else:
        util = [float(u) / 100.0 for u in flat.get("per_core", [])]
    ids = old.get("ids") or flat.get("ids") or list(range(len(util)))
    return [int(c) for c in ids][: len(util)], util[: len(ids)]


def power_of(sample: dict[str, Any]) -> tuple[float | None, str]:
    """(node power in W or None, its source label such as 'cpu:rapl+gpu:nvml')."""
    power = sample.get("power") or {}
    total = (power.get("watts") or {}).get("total")
    sources = power.get("sources") or {}
    label = "+".join(f"{k}:{v}" for k, v in sorted(sources.items())) or str(
        power.get("source") or "none")
    return (None if total is None else float(total)), label


def node_arrays(node: str, samples: list[dict[str, Any]]) -> NodeSamples:
    """Turn one node's samples (time order) into arrays."""
    per = [core_util(s) for s in samples]
    ids = sorted({c for cores, _ in per for c in cores})
    col = {c: i for i, c in enumerate(ids)}
    util = np.zeros((len(samples), len(ids)))
    sim_cpu = np.zeros(len(samples))
    watts = np.full(len(samples), np.nan)
    sim_cores: set[int] = set()
    sources: set[str] = set()
    for i, (s, (cores, values)) in enumerate(zip(samples, per, strict=True)):
        util[i, [col[c] for c in cores]] = values
        sim = ((s.get("processes") or {}).get("roles") or {}).get("sim") or {}
        sim_cpu[i] = float(sim.get("cpu") or 0.0)
        sim_cores.update(int(c) for c in sim.get("cores") or [])
        w, label = power_of(s)
        if w is not None:
            watts[i] = w
            sources.add(label)
    t = np.array([float(s["t"]) for s in samples])
    dt = np.array([float(s["dt"]) for s in samples])
    return NodeSamples(node, t, dt, ids, np.clip(util, 0.0, 1.0), sim_cpu, sorted(sim_cores),
                       watts, "+".join(sorted(sources)) or "none")
