"""Shared fixtures: a private ODOP_HOME per test, and helpers to run real processes."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from odop.engine.engine import Engine, Exit

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def odop_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "odop-home"
    monkeypatch.setenv("ODOP_HOME", str(home))
    return home


def mpiexec() -> str | None:
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.exists() else shutil.which("mpiexec")


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as a module (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"odop_bench_{name}",
                                                  REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def child_env(**extra: str) -> dict[str, str]:
    """Environment for child Python processes that must import this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture(params=["forked", "fresh"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A real engine in ``tmp_path``, on both start paths: fork server and fresh worker."""
    forked = request.param == "forked"
    eng = Engine(tmp_path / "run", grace_s=0.5, cwd=str(tmp_path), fork_server=forked,
                 cgroups=None)
    if forked:
        assert eng.server is not None and eng.server.wait_ready()
    yield eng
    eng.stop_all("test over", wait_s=0.5)
    eng.close()


def wait_exit(engine: Engine, timeout_s: float = 60.0) -> Exit:
    """The first exit an engine reports, enforcing its bounds meanwhile."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        engine.enforce()
        exits = engine.reap()
        if exits:
            return exits[0]
        time.sleep(0.02)
    raise AssertionError(f"no task exited in {timeout_s:.0f} s")
