"""Recorded samples as numpy arrays, one row per sample, for analysis and plots."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from odop_obs.errors import ObsConfigError
from odop_obs.reader import read_samples

_PER_CORE = ("per_core", "user", "system", "iowait")


def _per_core(sample: Mapping[str, Any], key: str) -> list[float]:
    """Percent per core; older samples without the flat ``cpu`` have util fractions only."""
    cpu = sample.get("cpu")
    if isinstance(cpu, Mapping) and key in cpu:
        return list(cpu[key])
    util = sample.get("system", {}).get("cpu", {}).get("util", [])
    return [u * 100.0 for u in util] if key == "per_core" else [np.nan] * len(util)


def _matrix(rows: list[list[float]]) -> np.ndarray:
    """[samples, cores] float64; rows shorter than the widest (a core offline) NaN-padded."""
    width = max((len(r) for r in rows), default=0)
    out = np.full((len(rows), width), np.nan)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _series(tables: list[Mapping[str, Any]], field: str, name: str) -> dict[str, np.ndarray]:
    """One array per key of the per-sample ``tables`` (roles, groups): ``name`` % key.

    A key absent from a sample counts 0 there (nothing of that role or label ran).
    """
    keys = sorted({k for table in tables for k in table})
    return {name % key: np.array([float(t.get(key, {}).get(field, 0.0)) for t in tables])
            for key in keys}


def load_arrays(path: str | os.PathLike[str], node: str | None = None) -> dict[str, np.ndarray]:
    """Arrays of one node's recorded samples (``path``: file, samples or run folder).

    Keys: ``t`` (unix s), ``dt`` (s), ``cpu.per_core``/``cpu.user``/``cpu.system``/
    ``cpu.iowait`` ([samples, cores], percent), ``memory.used``/``memory.available``
    (bytes), ``power.watts`` (W, node total), ``roles.<role>.cpu`` (cores, per role)
    and ``groups.<label>.cpu_pct`` (percent of one core, per label). With samples from
    several nodes, ``node`` must name one (ObsConfigError otherwise).
    """
    samples = list(read_samples(path, node))
    nodes = sorted({s["node"] for s in samples})
    if len(nodes) > 1:
        raise ObsConfigError("node", node, f"one of {nodes} (the records hold several nodes)")
    out: dict[str, np.ndarray] = {
        "t": np.array([s["t"] for s in samples], dtype=np.float64),
        "dt": np.array([s["dt"] for s in samples], dtype=np.float64),
    }
    for key in _PER_CORE:
        out[f"cpu.{key}"] = _matrix([_per_core(s, key) for s in samples])
    for key in ("used", "available"):
        mem = [s.get("memory") or s.get("system", {}).get("mem", {}) for s in samples]
        out[f"memory.{key}"] = np.array([m.get(key, np.nan) for m in mem], dtype=np.float64)
    watts = [s.get("power", {}).get("watts", {}) for s in samples]
    out["power.watts"] = np.array([w.get("total", np.nan) for w in watts], dtype=np.float64)
    roles = [s.get("processes", {}).get("roles", {}) for s in samples]
    out.update(_series(roles, "cpu", "roles.%s.cpu"))
    out.update(_series([s.get("groups", {}) for s in samples], "cpu_pct", "groups.%s.cpu_pct"))
    return out
