"""Task profiles across runs: declared requirements, measured history, and estimates.

The estimate of a task's duration and memory is a high quantile of its recent measured
history times a safety margin; with no history it falls back to the declaration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from odop.store.db import connect

SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    task TEXT PRIMARY KEY, declared TEXT NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS measurements (
    task TEXT NOT NULL, run TEXT NOT NULL, execution TEXT NOT NULL, t REAL NOT NULL,
    wall_s REAL NOT NULL, cpu_s REAL NOT NULL, max_rss_bytes INTEGER NOT NULL,
    threads INTEGER, energy_j REAL, exit_code INTEGER,
    PRIMARY KEY (task, execution));
CREATE TABLE IF NOT EXISTS scripts (
    task TEXT PRIMARY KEY, imports TEXT NOT NULL, mode TEXT NOT NULL, reason TEXT NOT NULL,
    updated_at REAL NOT NULL);
"""
SCRIPT_MODES = ("fork", "trial", "fresh")
"""How a Python-script task runs: forked warm; once fresh after a forked run failed (the
trial); fresh for good, as the trial succeeded where the fork had failed."""

HISTORY = 50
"""Measurements an estimate looks back on."""
QUANTILE = 0.9
MARGIN = 1.2


@dataclass(frozen=True)
class Measurement:
    """What one finished execution really used."""

    wall_s: float
    cpu_s: float
    max_rss_bytes: int
    threads: int | None = None
    energy_j: float | None = None
    exit_code: int | None = 0


@dataclass(frozen=True)
class Estimate:
    """What the scheduler expects of the next execution; ``source`` says where it came from."""

    duration_s: float | None
    memory_bytes: int | None
    cpu_s: float | None
    samples: int
    source: str  # "history" or "declared"


class ProfileStore:
    """``$ODOP_HOME/profiles.db``: shared by every run, so later runs schedule better."""

    def __init__(self, path: Path | str) -> None:
        Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.conn = connect(path, schema=SCHEMA)
        self._cache: dict[str, Estimate] = {}

    def close(self) -> None:
        self.conn.close()

    def declare(self, task: str, spec: dict[str, Any]) -> None:
        self.conn.execute("INSERT OR REPLACE INTO profiles VALUES (?, ?, ?)",
                          (task, json.dumps(spec), time.time()))
        self._cache.pop(task, None)

    def record(self, task: str, run: str, execution: str, m: Measurement) -> None:
        """Fold one execution's measured usage into the task's profile."""
        self.conn.execute(
            "INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (task, run, execution, time.time(), m.wall_s, m.cpu_s, m.max_rss_bytes,
             m.threads, m.energy_j, m.exit_code))
        self._cache.pop(task, None)

    def script(self, task: str) -> tuple[list[str], str, str]:
        """A script task's learned imports, its mode (SCRIPT_MODES) and why."""
        row = self.conn.execute("SELECT imports, mode, reason FROM scripts WHERE task=?",
                                (task,)).fetchone()
        if row is None:
            return [], "fork", ""
        return json.loads(row["imports"]), row["mode"], row["reason"]

    def set_script(self, task: str, imports: list[str], mode: str, reason: str) -> None:
        """Keep what a script task imported and how it runs from now on."""
        if mode not in SCRIPT_MODES:
            raise ValueError(f"script mode {mode!r} is unknown; allowed: {SCRIPT_MODES}")
        self.conn.execute("INSERT OR REPLACE INTO scripts VALUES (?, ?, ?, ?, ?)",
                          (task, json.dumps(sorted(imports)), mode, reason, time.time()))

    def history(self, task: str, limit: int = HISTORY) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT * FROM measurements WHERE task=? ORDER BY t DESC LIMIT ?", (task, limit))
        return [dict(r) for r in rows]

    def declared(self, task: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT declared FROM profiles WHERE task=?", (task,)).fetchone()
        return json.loads(row["declared"]) if row else None

    def tasks(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT task FROM profiles UNION SELECT task FROM measurements ORDER BY task")
        return [r["task"] for r in rows]

    def estimate(self, task: str) -> Estimate:
        """Expected duration (s), memory (bytes) and CPU (s) of the task's next execution."""
        if task not in self._cache:
            self._cache[task] = self._estimate(task)
        return self._cache[task]

    def _estimate(self, task: str) -> Estimate:
        ok = [h for h in self.history(task) if h["exit_code"] in (0, None)]
        if ok:
            return Estimate(
                duration_s=_high(h["wall_s"] for h in ok),
                memory_bytes=int(_high(h["max_rss_bytes"] for h in ok)),
                cpu_s=_high(h["cpu_s"] for h in ok),
                samples=len(ok), source="history")
        spec = self.declared(task) or {}
        memory = spec.get("memory_max") or spec.get("memory_min")
        return Estimate(spec.get("time_s"), memory, None, 0, "declared")

    def summary(self, task: str) -> dict[str, Any]:
        """Declaration, history summary and current estimate, for ``odop profiles``."""
        hist = self.history(task)
        est = self.estimate(task)
        stats: dict[str, Any] = {"count": len(hist)}
        for key in ("wall_s", "cpu_s", "max_rss_bytes"):
            values = np.array([h[key] for h in hist], dtype=float)
            if values.size:
                stats[key] = {"mean": float(values.mean()), "p50": float(np.median(values)),
                              "max": float(values.max())}
        return {"task": task, "declared": self.declared(task), "history": stats,
                "recent": hist[:10], "estimate": est.__dict__}


def _high(values: Any) -> float:
    return float(np.quantile(np.fromiter(values, dtype=float), QUANTILE) * MARGIN)
