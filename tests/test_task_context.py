"""Every execution knows its id and attempt (issue 17): ``ODOP_EXECUTION_ID`` and
``ODOP_ATTEMPT`` for programs, MPI tasks and Python tasks (``ODOP_EXECUTION`` kept as an
alias), and ``odop.context()`` inside a Python task. Real tasks; a retry through a live
scheduler is in tests/integration/test_engine_bounds_run.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import odop
from odop.engine.engine import Engine
from odop.taskenv import TaskContext, context
from tests.conftest import mpiexec

TASKS = '''
import json, os
import odop
def tell(out):
    ctx = odop.context()
    seen = {k: os.environ.get(k) for k in ("ODOP_EXECUTION_ID", "ODOP_ATTEMPT", "ODOP_EXECUTION")}
    with open(out, "w") as fh:
        json.dump({"env": seen, "context": ctx.__dict__}, fh)
'''
SCRIPT = '''#!/bin/sh
echo "$ODOP_EXECUTION_ID $ODOP_ATTEMPT $ODOP_EXECUTION" > "$1.${PMI_RANK:-0}"
'''


def run(engine: Engine, execution: str, spec: dict, args: dict, attempt: int) -> None:
    engine.start(execution, spec, args, [0], attempt=attempt)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        exits = engine.reap()
        if exits:
            assert exits[0].exit_code == 0, exits[0]
            return
        time.sleep(0.02)
    raise AssertionError(f"{execution} did not exit")


def test_context_outside_a_task_is_none() -> None:
    assert context({}) is None
    assert odop.context is context and odop.TaskContext is TaskContext


def test_context_reads_what_odop_sets() -> None:
    env = {"ODOP_EXECUTION_ID": "ab" * 16, "ODOP_ATTEMPT": "2", "ODOP_CORES": "3,5",
           "ODOP_GPUS": "", "ODOP_RUN_DIR": "/r", "ODOP_TASK_DIR": "/r/tasks/x"}
    ctx = context(env)
    assert ctx == TaskContext("ab" * 16, 2, (3, 5), (), "/r", "/r/tasks/x")
    with pytest.raises(AttributeError):
        ctx.attempt = 3  # type: ignore[misc]  # frozen


def test_a_python_task_sees_its_id_and_attempt(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "ctx.py").write_text(TASKS)
    out = tmp_path / "seen.json"
    spec = {"kind": "python", "target": f"{tmp_path}/ctx.py:tell"}
    run(engine, "py1", spec, {"out": str(out)}, attempt=1)
    seen = json.loads(out.read_text())
    assert seen["env"] == {"ODOP_EXECUTION_ID": "py1", "ODOP_ATTEMPT": "1",
                           "ODOP_EXECUTION": "py1"}
    ctx = seen["context"]
    assert (ctx["execution_id"], ctx["attempt"], ctx["cores"]) == ("py1", 1, [0])
    assert ctx["task_dir"] == str(tmp_path / "run/tasks/py1")


def script(tmp_path: Path) -> str:
    path = tmp_path / "tell.sh"
    path.write_text(SCRIPT)
    path.chmod(0o755)
    return str(path)


def test_a_program_sees_its_id_and_attempt(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "run", cwd=str(tmp_path), fork_server=False, cgroups=None)
    spec = {"kind": "executable", "target": script(tmp_path), "argv": ["{out}"]}
    run(engine, "ex1", spec, {"out": str(tmp_path / "seen")}, attempt=2)
    assert (tmp_path / "seen.0").read_text() == "ex1 2 ex1\n"


@pytest.mark.mpi
@pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")
def test_every_rank_of_an_mpi_task_sees_its_id_and_attempt(tmp_path: Path) -> None:
    engine = Engine(tmp_path / "run", cwd=str(tmp_path), fork_server=False, cgroups=None)
    spec = {"kind": "mpi", "target": script(tmp_path), "argv": ["{out}"], "ranks_per_node": 2}
    run(engine, "mpi1", spec, {"out": str(tmp_path / "seen")}, attempt=3)
    assert [p.read_text() for p in sorted(tmp_path.glob("seen.*"))] == ["mpi1 3 mpi1\n"] * 2


def test_the_examples_write_their_outputs_idempotently(tmp_path: Path) -> None:
    """tasks/examples: reduce and archive write under a name of their execution and attempt,
    then rename into place; run twice (a retry after a crash), they leave the same output
    and nothing else."""
    import shutil

    import numpy as np

    from tests.conftest import REPO

    examples = REPO / "tasks/examples"
    archive = json.loads((examples / "pipeline.json").read_text())["tasks"][1]
    specs = {"reduce": {"kind": "python", "target": f"{examples}/steps.py:reduce"},
             "archive": {"kind": "executable", "target": shutil.which(archive["program"]),
                         "argv": archive["argv"]}}  # as loaded (tests/test_loader.py)
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    np.save(snapshots / "s0.npy", np.arange(5.0))
    engine = Engine(tmp_path / "run", cwd=str(tmp_path), fork_server=False, cgroups=None)
    for attempt in (0, 1):
        run(engine, "r1", specs["reduce"], {"path": str(snapshots / "s0.npy")}, attempt)
        run(engine, "a1", specs["archive"],
            {"out": str(tmp_path / "s.tar.gz"), "folder": "snapshots"}, attempt)
        assert (snapshots / "s0.npy.mean.txt").read_text() == "2.0\n"
        assert sorted(p.name for p in snapshots.iterdir()) == ["s0.npy", "s0.npy.mean.txt"]
        assert sorted(p.name for p in tmp_path.glob("s.tar.gz*")) == ["s.tar.gz"]
