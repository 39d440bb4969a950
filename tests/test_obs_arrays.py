from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from odop_obs import ObsConfigError, Observer, Recorder, load_arrays
from odop_obs.schema import header


def test_shapes_from_a_recorded_run(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "samples", "n1")
    obs = Observer.standard([rec], gpu=False, node="n1")
    obs.processes.watch(os.getpid(), "odop", "me")
    for _ in range(4):
        obs.tick()
    obs.close()
    a = load_arrays(tmp_path)
    cores = os.cpu_count()
    assert a["t"].shape == a["dt"].shape == (4,) and np.all(np.diff(a["t"]) > 0)
    for key in ("cpu.per_core", "cpu.user", "cpu.system", "cpu.iowait"):
        assert a[key].shape == (4, cores) and a[key].dtype == np.float64
    assert a["memory.used"].shape == (4,) and np.all(a["memory.used"] > 0)
    assert a["power.watts"].shape == (4,) and np.all(a["power.watts"] > 0)
    assert a["roles.odop.cpu"].shape == a["groups.me.cpu_pct"].shape == (4,)


def _write(folder: Path, node: str, rows: list[dict[str, object]]) -> None:
    rec = Recorder(folder, node)
    for seq, extra in enumerate(rows):
        rec.emit({**header(node, 1, seq, float(seq), 1.0), **extra})
    rec.close()


def test_missing_roles_are_zero_and_offline_cores_nan(tmp_path: Path) -> None:
    _write(tmp_path, "n1", [
        {"cpu": {"per_core": [10.0, 20.0]}, "processes": {"roles": {"sim": {"cpu": 1.5}}}},
        {"cpu": {"per_core": [30.0]}, "processes": {"roles": {"task": {"cpu": 0.5}}}},
    ])
    a = load_arrays(tmp_path)
    assert a["roles.sim.cpu"].tolist() == [1.5, 0.0] and a["roles.task.cpu"].tolist() == [0, .5]
    assert a["cpu.per_core"][0].tolist() == [10.0, 20.0]
    assert a["cpu.per_core"][1, 0] == 30.0 and np.isnan(a["cpu.per_core"][1, 1])


def test_several_nodes_need_a_node(tmp_path: Path) -> None:
    _write(tmp_path, "a", [{}])
    _write(tmp_path, "b", [{}, {}])
    with pytest.raises(ObsConfigError, match="several nodes"):
        load_arrays(tmp_path)
    assert load_arrays(tmp_path, node="b")["t"].shape == (2,)
