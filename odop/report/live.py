"""The state of a run right now, for a live view: queue, running tasks, nodes, power, carbon.

:class:`LiveRun` keeps read offsets into the observer's sample files, so each refresh
reads only the samples appended since the last one. Units: seconds, watts, gCO2/kWh,
grams of CO2, cores.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from odop.energy.planner import J_PER_KWH
from odop.report.data import RunData, core_util, power_of
from odop.report.energy import run_signal
from odop.store.executions import RunStore
from odop.store.states import ExecState
from odop_obs.recorder import HEADER, MAGIC
from odop_obs.schema import validate_sample


@dataclass(frozen=True)
class RunningTask:
    """One execution holding cores: elapsed seconds against the profile's expectation."""

    id: str
    task: str
    state: str
    node: str
    cores: list[int]
    elapsed_s: float
    expected_s: float | None
    gpus: list[int] = field(default_factory=list)

    @property
    def progress(self) -> float | None:
        """elapsed / expected (may exceed 1: running longer than expected)."""
        return self.elapsed_s / self.expected_s if self.expected_s else None


@dataclass(frozen=True)
class NodeNow:
    """A node at its latest sample: cores, the idle ones, power (W) and its source."""

    node: str
    cores: list[int]
    idle: list[int]
    watts: float | None
    power_source: str
    sample_age_s: float


@dataclass(frozen=True)
class Snapshot:
    """Everything one frame of the live view shows."""

    run: str
    t: float
    ended: bool
    sim_running: bool
    counts: dict[str, int]
    running: list[RunningTask]
    nodes: list[NodeNow]
    carbon_g_per_kwh: float | None
    signal_source: str
    gco2_so_far: float
    joules_so_far: float


@dataclass
class _Tail:
    """Read position in one sample file and the node's running energy total."""

    offset: int = 0
    last: dict[str, Any] | None = None
    joules: float = 0.0
    gco2: float = 0.0


@dataclass
class LiveRun:
    """Incremental reader of one run folder (``runs/<run>``)."""

    root: Path
    profiles_path: Path | None = None
    tails: dict[Path, _Tail] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.profiles_path is None:
            self.profiles_path = self.root.parent.parent / "profiles.db"
        self._expected: dict[str, float | None] = {}

    def refresh(self, now: float | None = None) -> Snapshot:
        """Read what changed since the last call and return the current state."""
        now = time.time() if now is None else now
        store = RunStore(self.root / "odop.db", readonly=True)
        try:
            meta, counts, comps = store.meta(), store.counts(), store.components()
            active = store.in_states(ExecState.PLACED, ExecState.RUNNING, ExecState.PAUSED)
        finally:
            store.close()
        data = RunData(str(meta.get("run") or self.root.name), self.root, meta, comps, [], [])
        signal = run_signal(data)
        self._read_samples(signal)
        running = [self._running(e, now) for e in active]
        threshold = float((meta.get("config") or {}).get("busy_threshold_pct", 50.0)) / 100
        nodes = [_node_now(t.last, active, threshold, now)
                 for t in self.tails.values() if t.last is not None]
        return Snapshot(data.name, now, data.ended(), "sim_end" not in meta, counts, running,
                        sorted(nodes, key=lambda n: n.node), signal.value_at(now),
                        signal.source, sum(t.gco2 for t in self.tails.values()),
                        sum(t.joules for t in self.tails.values()))

    def _running(self, e: dict[str, Any], now: float) -> RunningTask:
        elapsed = now - e["started_at"] if e["started_at"] else 0.0
        return RunningTask(e["id"], e["task"], e["state"], e["node"] or "", e["cores"],
                           max(0.0, elapsed), self.expected(e["task"]), e.get("gpus") or [])

    def expected(self, task: str) -> float | None:
        """The profile store's expected duration of ``task`` (s); None without one."""
        if task not in self._expected:
            self._expected[task] = None
            if self.profiles_path is not None and self.profiles_path.exists():
                from odop.store.profiles import ProfileStore

                profiles = ProfileStore(self.profiles_path)
                try:
                    self._expected[task] = profiles.estimate(task).duration_s
                finally:
                    profiles.close()
        return self._expected[task]

    def _read_samples(self, signal: Any) -> None:
        from odop_obs import ObsConfigError
        from odop_obs.reader import record_files

        try:
            files = record_files(self.root)
        except ObsConfigError:  # no samples yet
            return
        for path in files:
            tail = self.tails.setdefault(path, _Tail())
            for sample in _new_samples(path, tail):
                _accumulate(tail, sample, signal)


def _new_samples(path: Path, tail: _Tail) -> list[dict[str, Any]]:
    """Whole records appended since ``tail.offset``; a torn last one waits for later."""
    with open(path, "rb") as f:
        f.seek(tail.offset)
        chunk = f.read()
    payloads, used = (_lines(chunk) if path.suffix == ".jsonl"
                      else _records(chunk, skip_magic=tail.offset == 0))
    tail.offset += used
    out = []
    for payload in payloads:
        try:
            out.append(validate_sample(
                json.loads(payload) if path.suffix == ".jsonl" else msgpack.unpackb(payload)))
        except (ValueError, msgpack.UnpackException):
            continue
    return out


def _lines(chunk: bytes) -> tuple[list[bytes], int]:
    end = chunk.rfind(b"\n") + 1
    return chunk[:end].splitlines(), end


def _records(chunk: bytes, *, skip_magic: bool) -> tuple[list[bytes], int]:
    """Payloads of the whole length-prefixed records in ``chunk`` (odop_obs.recorder)."""
    pos = len(MAGIC) if skip_magic and chunk.startswith(MAGIC) else 0
    if skip_magic and pos == 0:
        return [], 0  # header not written yet
    out = []
    while pos + HEADER.size <= len(chunk):
        length, crc = HEADER.unpack_from(chunk, pos)
        if pos + HEADER.size + length > len(chunk):
            break
        payload = chunk[pos + HEADER.size: pos + HEADER.size + length]
        if zlib.crc32(payload) == crc:
            out.append(payload)
        pos += HEADER.size + length
    return out, pos


def _accumulate(tail: _Tail, sample: dict[str, Any], signal: Any) -> None:
    """Add the interval since the previous sample to the node's joules and gCO2."""
    watts, prev = power_of(sample)[0], tail.last
    tail.last = sample
    if prev is None:
        return
    prev_w = power_of(prev)[0]
    if watts is not None and prev_w is not None and sample["t"] > prev["t"]:
        joules = (sample["t"] - prev["t"]) * (watts + prev_w) / 2.0
        tail.joules += joules
        tail.gco2 += joules / J_PER_KWH * signal.mean_over(prev["t"], sample["t"])


def _node_now(sample: dict[str, Any], active: list[dict[str, Any]], threshold: float,
              now: float) -> NodeNow:
    """Idle cores: those under ``threshold`` utilisation (0..1) and granted to no task."""
    node = sample["node"]
    ids, util = core_util(sample)
    held = {int(c) for e in active if e["node"] == node for c in e["cores"]}
    idle = [c for c, u in zip(ids, util, strict=True) if u < threshold and c not in held]
    watts, source = power_of(sample)
    return NodeNow(node, ids, idle, watts, source, max(0.0, now - float(sample["t"])))
