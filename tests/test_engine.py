"""The engine on real child processes: pinning, priority, thread variables, usage, limits.

Every Python-task test runs twice: forked by the fork server, and in a fresh interpreter."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from odop.engine.engine import Engine, command_line, gpu_env
from odop.engine.spawn import SpawnError, clean_env
from odop.tasks.spec import parse_spec
from tests.conftest import wait_exit

TASKS = '''
import json, os
def record(out):
    with open("/proc/self/status") as fh:
        allowed = [l.split(":")[1].strip() for l in fh if l.startswith("Cpus_allowed_list")][0]
    info = {"affinity": sorted(os.sched_getaffinity(0)), "allowed": allowed,
            "policy": os.sched_getscheduler(0), "nice": os.getpriority(os.PRIO_PROCESS, 0),
            "omp": os.environ.get("OMP_NUM_THREADS"), "pmi": os.environ.get("PMI_RANK"),
            "pgid_is_pid": os.getpgid(0) == os.getpid(), "ppid": os.getppid()}
    open(out, "w").write(json.dumps(info))
def boom():
    raise RuntimeError("task failed on purpose")
def hog():
    blocks = []
    while True:
        blocks.append(bytearray(64 * 2**20))
def sleepy():
    import time
    time.sleep(60)
def chatty(megabytes):
    import sys
    line = "x" * 1023 + "\\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(line)
def quits(code):
    import os
    os._exit(code)
def resumable(out):
    import odop, os, time
    mark = os.path.join(odop.checkpoint_dir(), "progress")
    if os.path.exists(mark):
        open(out, "w").write("resumed from " + open(mark).read())
        return
    open(mark, "w").write("step 1")
    time.sleep(60)
'''


@pytest.fixture(autouse=True)
def tasks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tasks, and an environment as if the engine had been started from a rank."""
    (tmp_path / "mytasks.py").write_text(TASKS)
    monkeypatch.setenv("PMI_RANK", "3")


def spec(tmp_path: Path, func: str, **kw: object) -> dict:
    return {"kind": "python", "target": f"{tmp_path}/mytasks.py:{func}", **kw}




def test_task_is_pinned_lowered_and_isolated(engine: Engine, tmp_path: Path) -> None:
    core = max(os.sched_getaffinity(0))
    out = tmp_path / "info.json"
    engine.start("e1", spec(tmp_path, "record"), {"out": str(out)}, [core])
    result = wait_exit(engine)
    assert result.exit_code == 0, (tmp_path / "run/tasks/e1/stderr").read_text()
    info = json.loads(out.read_text())
    assert info["affinity"] == [core] and info["allowed"] == str(core)
    assert info["policy"] == os.SCHED_IDLE and info["nice"] == 19
    assert info["omp"] == "1" and info["pmi"] is None and info["pgid_is_pid"]
    assert result.cpu_s > 0 and result.max_rss_bytes > 1_000_000
    forked = engine.server is not None
    assert (info["ppid"] == engine.server.pid) if forked else info["ppid"] == os.getpid()


def test_failure_is_recorded_with_stderr(engine: Engine, tmp_path: Path) -> None:
    engine.start("e2", spec(tmp_path, "boom"), {}, [0])
    result = wait_exit(engine)
    assert result.exit_code == 1 and result.reason == "exit status 1"
    assert "task failed on purpose" in (tmp_path / "run/tasks/e2/stderr").read_text()


def test_memory_bound_kills_and_says_so(engine: Engine, tmp_path: Path) -> None:
    engine.start("e3", spec(tmp_path, "hog", memory_max=300 * 2**20), {}, [0])
    result = wait_exit(engine)
    assert result.signal == signal.SIGKILL, result  # no cgroup here: sampled, then killed
    assert result.reason.startswith("out of memory: held ") and "sampled" in result.reason


def test_time_limit_kills_the_whole_tree(engine: Engine, tmp_path: Path) -> None:
    engine.start("e4", spec(tmp_path, "sleepy", time_limit_s=0.5), {}, [0])
    result = wait_exit(engine)
    assert result.signal == signal.SIGKILL and result.reason == "time limit exceeded"


def test_pause_resume_and_stop(engine: Engine, tmp_path: Path) -> None:
    proc = engine.start("e5", spec(tmp_path, "sleepy"), {}, [0])
    time.sleep(0.3)
    proc.pause()
    assert _state(proc.pid) == "T"
    proc.resume()
    assert _state(proc.pid) in "SR"
    exits = engine.stop_all("test over")
    assert exits[0].reason == "test over" and not engine.tasks


def test_megabytes_of_output_never_block(engine: Engine, tmp_path: Path) -> None:
    engine.start("e6", spec(tmp_path, "chatty"), {"megabytes": 8}, [0])
    result = wait_exit(engine)
    assert result.exit_code == 0 and result.output_cut_bytes == 0  # under the 10 MiB bound
    assert (tmp_path / "run/tasks/e6/stdout").stat().st_size == 8 * 2**20


def test_early_exit_is_its_own_status(engine: Engine, tmp_path: Path) -> None:
    engine.start("e7", spec(tmp_path, "quits"), {"code": 5}, [0])
    assert wait_exit(engine).reason == "exit status 5"
    engine.start("e8", spec(tmp_path, "nowhere"), {}, [0])
    result = wait_exit(engine)
    assert result.exit_code == 98 and "load" in result.reason
    assert "nowhere" in (tmp_path / "run/tasks/e8/stderr").read_text()


def test_missing_program_is_a_clear_error(engine: Engine) -> None:
    with pytest.raises(SpawnError, match="not found"):
        from odop.engine.spawn import spawn

        spawn(["no-such-program-xyz"], cores=[0], env=dict(os.environ), cwd=".",
              stdout=Path(os.devnull), stderr=Path(os.devnull))


def test_executable_argv_is_filled_from_arguments() -> None:
    spec = {"target": "gzip", "argv": ["-k", "{path}"]}
    assert command_line(spec, {"path": "/a b"}) == ["gzip", "-k", "/a b"]


def test_clean_env_drops_launcher_variables() -> None:
    env = clean_env({"PMI_RANK": "0", "PMI_FD": "9", "HYDRA_X": "1", "HOME": "/h",
                     "OMPI_COMM_WORLD_RANK": "1", "SLURM_JOB_ID": "5"})
    assert env == {"HOME": "/h", "SLURM_JOB_ID": "5"}


def _state(pid: int) -> str:
    time.sleep(0.1)
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0]


def test_resumable_task_finds_its_checkpoint_on_the_next_attempt(engine: Engine,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "resumed.txt"
    task = spec(tmp_path, "resumable", resumable=True)
    proc = engine.start("e7", task, {"out": str(out)}, [0])
    checkpoint = tmp_path / "run" / "checkpoints" / "e7" / "progress"
    end = time.monotonic() + 30
    while not checkpoint.exists() and time.monotonic() < end:
        time.sleep(0.05)
    proc.stop("preempted")  # TERM, as a requeueing preemption does
    wait_exit(engine)
    engine.start("e7", task, {"out": str(out)}, [0])  # the same execution, next attempt
    assert wait_exit(engine).exit_code == 0
    assert out.read_text() == "resumed from step 1"


def test_drain_tasks_are_not_held_below_other_load(engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "drain.json"
    engine.start("e8", spec(tmp_path, "record", drain=True), {"out": str(out)}, [0])
    assert wait_exit(engine).exit_code == 0
    info = json.loads(out.read_text())
    assert info["policy"] == os.SCHED_OTHER and info["nice"] == 19


def test_per_execution_folders_leave_no_interned_string(tmp_path: Path) -> None:
    """pathlib (3.11) interns every component it parses: a Path per execution id in a
    long-running agent grows the interpreter's intern table (benchmarks/README.md, soak)."""
    from odop.paths import RunPaths

    execution = "".join(["e", os.urandom(8).hex()])  # built at run time: not interned
    paths = RunPaths(tmp_path)
    folders = (paths.task_dir(execution), paths.checkpoint_dir(execution))  # kept alive
    copy = "".join(["e", execution[1:]])
    assert sys.intern(copy) is copy, "the execution id was interned"
    assert all(folder.endswith(execution) for folder in folders)


def test_a_task_sees_its_granted_gpus_only() -> None:
    assert gpu_env([2, 0]) == {"CUDA_DEVICE_ORDER": "PCI_BUS_ID",
                               "CUDA_VISIBLE_DEVICES": "2,0", "ODOP_GPUS": "2,0"}
    assert gpu_env([])["CUDA_VISIBLE_DEVICES"] == ""  # granted none: sees none


def test_an_executable_runs_its_program_with_its_filled_argv(tmp_path: Path) -> None:
    spec = parse_spec({"name": "say", "program": "/bin/echo", "argv": ["hello", "{who}"]},
                      source="test").to_dict()
    engine = Engine(tmp_path / "run", cwd=str(tmp_path), fork_server=False, cgroups=None)
    engine.start("e1", spec, {"who": "world"}, [min(os.sched_getaffinity(0))])
    end, exits = time.monotonic() + 30, []
    while not exits and time.monotonic() < end:
        exits = engine.reap()
        time.sleep(0.02)
    assert exits and exits[0].exit_code == 0
    assert (tmp_path / "run" / "tasks" / "e1" / "stdout").read_text() == "hello world\n"
