"""A small synthetic run folder with known numbers, built through the real stores.

Timeline (seconds after t0 = 1000): the simulation holds core 0 from 0 to 10;
'a' (reduce) runs on core 1 from 2 to 6 (4 CPU s); 'c' (reduce) runs on core 1 from
6 to 8 and fails (2 CPU s); 'b' (compress) runs on core 1 from 8 to 14 (6 CPU s);
'd' stays queued and is cancelled at 14. The observer samples every second from 1 to
15: core 0 busy until 10, core 1 busy while a task runs; power 10 W + 5 W per busy core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from odop.store.executions import RunStore
from odop.store.states import ExecState as S
from odop_obs import Recorder
from odop_obs.schema import header

T0 = 1000.0
SIM_END = T0 + 10
RUNS = {"a": ("reduce", 2, 6, 4.0, 0), "c": ("reduce", 6, 8, 2.0, 1),
        "b": ("compress", 8, 14, 6.0, 0)}
"""execution: (task, start, end (s after T0), CPU s, exit code)"""


def _store_run(store: RunStore, *, ended: bool, meta: dict[str, Any]) -> None:
    store.set_meta("run", "synthetic")
    store.set_meta("started", T0)
    store.set_meta("sim_end", SIM_END)
    for key, value in meta.items():
        store.set_meta(key, value)
    store.add_component("scheduler", "n0", 4242)
    store.add_component("agent", "n0", 4243)
    for i, (ex, (task, _, _, _, _)) in enumerate([*RUNS.items(), ("d", ("compress", 0, 0, 0, 0))]):
        store.add(ex, task, {"i": i}, now=T0 + 1 + i)
    for ex, (_, start, end, cpu, code) in RUNS.items():
        store.transition(ex, S.PLACED, now=T0 + start, node="n0", cores=[1])
        store.transition(ex, S.RUNNING, now=T0 + start, started_at=T0 + start)
        store.transition(ex, S.DONE if code == 0 else S.FAILED, now=T0 + end, ended_at=T0 + end,
                         cpu_s=cpu, wall_s=float(end - start), max_rss_bytes=(1 + code) * 2**20,
                         exit_code=code)
    store.transition("d", S.CANCELLED, now=T0 + 14, detail="simulation ended")
    if ended:
        store.end_component("scheduler", "n0", 4242)


def sample(seq: int, t: float, busy: list[float]) -> dict[str, Any]:
    """One observer sample in the recorded layout, for node n0 with 2 cores."""
    s = header("n0", 4243, seq, t, 1.0)
    s["system"] = {"cpu": {"ids": [0, 1], "util": busy, "mean": sum(busy) / 2,
                           "busy_cores": sum(busy), "iowait": 0.0}}
    sim = t <= SIM_END
    s["processes"] = {"watched": [], "exited": [], "roles": {
        "sim": {"count": 1, "cpu": 1.0 if sim else 0.0, "rss": 2**20, "cores": [0]}}}
    s["power"] = {"watts": {"cpu": 10 + 5 * sum(busy), "total": 10 + 5 * sum(busy)},
                  "sources": {"cpu": "model"}}
    return s


def busy_at(t: float) -> list[float]:
    """Utilisation of cores 0 and 1 over the second ending at ``t``."""
    rel = t - T0
    core1 = any(start < rel <= end for _, start, end, _, _ in RUNS.values())
    return [1.0 if rel <= 10 else 0.0, 1.0 if core1 else 0.0]


def make_run(home: Path, *, ended: bool = True, samples: bool = True,
             meta: dict[str, Any] | None = None) -> Path:
    """Create ``home/runs/synthetic`` and return its folder."""
    run = home / "runs" / "synthetic"
    (run / "samples").mkdir(parents=True)
    store = RunStore(run / "odop.db")
    try:
        _store_run(store, ended=ended, meta=meta or {})
    finally:
        store.close()
    if samples:
        rec = Recorder(run / "samples", "n0")
        for seq, k in enumerate(range(1, 16)):
            rec.emit(sample(seq, T0 + k, busy_at(T0 + k)))
        rec.close()
    return run
