from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from odop.store.executions import RunStore, TransitionError
from odop.store.profiles import Measurement, ProfileStore
from odop.store.states import ExecState


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "odop.db")


def test_add_is_idempotent(store: RunStore) -> None:
    assert store.add("e1", "reduce", {"path": "a"})
    assert not store.add("e1", "reduce", {"path": "b"})
    assert store.get("e1")["args"] == {"path": "a"}  # type: ignore[index]


def test_life_cycle_and_history(store: RunStore) -> None:
    store.add("e1", "t", {})
    store.transition("e1", ExecState.PLACED, node="n", cores=[2, 3])
    store.transition("e1", ExecState.RUNNING, pid=42, started_at=1.0)
    store.transition("e1", ExecState.DONE, exit_code=0, cpu_s=0.5, max_rss_bytes=10)
    row = store.get("e1")
    assert row is not None and row["cores"] == [2, 3] and row["state"] == "done"
    assert [h[1] for h in store.history("e1")] == ["queued", "placed", "running", "done"]


def test_forbidden_transition_says_what_is_allowed(store: RunStore) -> None:
    store.add("e1", "t", {})
    with pytest.raises(TransitionError, match="queued -> done not allowed"):
        store.transition("e1", ExecState.DONE)


def test_readonly_sees_writes(store: RunStore) -> None:
    store.add("e1", "t", {})
    reader = RunStore(store.path, readonly=True)
    assert reader.counts() == {"queued": 1}


def test_profile_estimate_from_history(tmp_path: Path) -> None:
    profiles = ProfileStore(tmp_path / "profiles.db")
    profiles.declare("t", {"time_s": 100.0, "memory_max": 1000})
    assert profiles.estimate("t").source == "declared"
    assert profiles.estimate("t").duration_s == 100.0
    for i, wall in enumerate([2.0, 3.0, 4.0]):
        profiles.record("t", "run", f"e{i}", Measurement(wall, wall / 2, 500))
    est = profiles.estimate("t")
    assert est.source == "history" and est.samples == 3
    assert 3.0 < est.duration_s < 100.0  # type: ignore[operator]
    assert profiles.summary("t")["history"]["count"] == 3


def test_failed_runs_do_not_shape_the_estimate(tmp_path: Path) -> None:
    profiles = ProfileStore(tmp_path / "profiles.db")
    profiles.record("t", "run", "ok", Measurement(1.0, 1.0, 100))
    profiles.record("t", "run", "bad", Measurement(500.0, 1.0, 100, exit_code=1))
    assert profiles.estimate("t").duration_s < 2.0  # type: ignore[operator]


def test_profile_store_creates_its_folder(tmp_path: Path) -> None:
    ProfileStore(tmp_path / "new" / "home" / "profiles.db").close()
    assert (tmp_path / "new" / "home" / "profiles.db").exists()


def test_a_run_database_from_before_gpus_is_brought_up_to_date(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "odop.db")
    old.executescript("CREATE TABLE executions (id TEXT PRIMARY KEY, task TEXT NOT NULL,"
                      " args BLOB NOT NULL, state TEXT NOT NULL, priority INTEGER NOT NULL"
                      " DEFAULT 0, submitted_at REAL NOT NULL, not_before REAL NOT NULL"
                      " DEFAULT 0, deadline REAL, attempt INTEGER NOT NULL DEFAULT 0, node TEXT,"
                      " cores TEXT, pid INTEGER, started_at REAL, ended_at REAL, exit_code"
                      " INTEGER, signal INTEGER, reason TEXT, cpu_s REAL, max_rss_bytes INTEGER,"
                      " wall_s REAL, origin TEXT, energy_j REAL, gco2 REAL, power_source TEXT,"
                      " threads INTEGER)")
    old.close()
    store = RunStore(tmp_path / "odop.db")
    store.add("e", "t", {})
    store.transition("e", ExecState.PLACED, node="n", cores=[1], gpus=[0, 2])
    assert (store.get("e") or {})["gpus"] == [0, 2]
    store.close()
