"""A run's end loses nothing: the last snapshot's tasks run, in wrapped and embedded mode,
however the program's end falls in the agent's sampling period, and the account says so.

The program renames its files into place 0.3 s apart and exits at once, after a random
sleep so that its end lands anywhere in the agent's second. ``ODOP_END_RUNS`` sets how
many runs each loop makes (the issue's reproduction used 30; CI makes 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mpiexec

pytestmark = [pytest.mark.slow, pytest.mark.mpi,
              pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")]
RUNS = int(os.environ.get("ODOP_END_RUNS", "6"))
FILES = 4

WRITER = '''
import os, random, sys, time
from mpi4py import MPI

def write_all(out):
    time.sleep(random.random())
    for i in range(4):
        tmp = os.path.join(out, f".snap{i}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(os.urandom(1000))
        os.rename(tmp, os.path.join(out, f"snap{i}.npy"))
        if i < 3:
            time.sleep(0.3)

if __name__ == "__main__":
    write_all(sys.argv[1])
'''

EMBEDDED = '''
import json, os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import odop
from writer import write_all

@odop.task(name="mark", time="5s", cpus=1)
def mark(path):
    open(path, "w").close()

if __name__ == "__main__":
    out = sys.argv[1]
    odop.start(task_folder=sys.argv[2])
    write_all(out)
    odop.submit("mark", path=os.path.join(out, "last.mark"))
    print(json.dumps(odop.stop()), flush=True)
'''


def _tasks(folder: Path, data: Path) -> Path:
    tasks = folder / "tasks"
    tasks.mkdir()
    (tasks / "copy.json").write_text(json.dumps({
        "name": "copy", "program": "/bin/sh", "argv": ["-c", "sleep 0.3; cp {path} {path}.out"],
        "trigger": {"file": f"{data}/*.npy"}}))
    return tasks


def _missed(data: Path) -> list[str]:
    return [f"snap{i}.npy" for i in range(FILES) if not (data / f"snap{i}.npy.out").exists()]


def test_wrapped_run_processes_the_last_files(tmp_path: Path, odop_home: Path) -> None:
    (tmp_path / "writer.py").write_text(WRITER)
    for n in range(RUNS):
        run = tmp_path / f"r{n}"
        data = run / "data"
        data.mkdir(parents=True)
        argv = [sys.executable, "-m", "odop", "run", "--tasks", str(_tasks(run, data)), "--json",
                "--", str(mpiexec()), "-n", "1", sys.executable, str(tmp_path / "writer.py"),
                str(data)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=run,
                              env=child_env())
        summary = json.loads(proc.stdout)
        assert not _missed(data), (n, _missed(data), proc.stderr)
        assert proc.returncode == 0 and summary["status"] == 0, proc.stderr
        account = summary["account"]
        assert account["done"] == FILES and account["unaccounted"] == 0, account


def test_embedded_stop_right_after_the_last_file_and_submit(tmp_path: Path,
                                                            odop_home: Path) -> None:
    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "sim.py").write_text(EMBEDDED)
    for n in range(max(1, RUNS // 2)):
        run = tmp_path / f"r{n}"
        data = run / "data"
        data.mkdir(parents=True)
        argv = [str(mpiexec()), "-n", "1", sys.executable, str(tmp_path / "sim.py"), str(data),
                str(_tasks(run, data))]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=90, cwd=run,
                              env=child_env())
        assert proc.returncode == 0, proc.stderr
        account = json.loads(proc.stdout.splitlines()[-1])["account"]
        assert not _missed(data) and (data / "last.mark").exists(), (n, proc.stderr)
        assert account["done"] == FILES + 1 and account["unaccounted"] == 0, account
        assert account["origins"] == {"file trigger": FILES, "call": 1}, account


def test_a_file_no_trigger_submitted_is_unaccounted(tmp_path: Path, odop_home: Path) -> None:
    """The account compares what a trigger matches on disk with what it submitted: a file
    that appeared after the scheduler was gone is counted, never hidden."""
    from odop.launch.account import take
    from odop.paths import RunPaths

    data = tmp_path / "data"
    data.mkdir()
    argv = [sys.executable, "-m", "odop", "run", "--tasks", str(_tasks(tmp_path, data)),
            "--json", "--", sys.executable, "-c", "pass"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env=child_env())
    summary = json.loads(proc.stdout)
    assert summary["account"]["unaccounted"] == 0, proc.stderr
    (data / "late.npy").write_bytes(b"x")
    late = take(RunPaths(Path(summary["run_dir"])))
    assert late.unsubmitted == 1 and late.unaccounted == 1


def test_status_shows_the_account(tmp_path: Path, odop_home: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    program = "import pathlib; pathlib.Path('data/a.npy').touch()"
    argv = [sys.executable, "-m", "odop", "run", "--tasks", str(_tasks(tmp_path, data)),
            "--json", "--", sys.executable, "-c", program]
    ran = json.loads(subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                    cwd=tmp_path, env=child_env()).stdout)
    status = subprocess.run([sys.executable, "-m", "odop", "status", ran["run"], "--json"],
                            capture_output=True, text=True, timeout=60, env=child_env())
    assert json.loads(status.stdout)["account"] == ran["account"]
    text = subprocess.run([sys.executable, "-m", "odop", "status", ran["run"]],
                          capture_output=True, text=True, timeout=60, env=child_env()).stdout
    assert "account: 1 submitted (1 file trigger): 1 done; 0 unaccounted" in text, text


CRASH = '''
import os, sys, time
import odop

if __name__ == "__main__":
    odop.start(task_folder=sys.argv[2])
    time.sleep(1.0)
    with open(os.path.join(sys.argv[1], ".last.tmp"), "wb") as fh:
        fh.write(b"x")
    os.rename(os.path.join(sys.argv[1], ".last.tmp"), os.path.join(sys.argv[1], "last.npy"))
    os._exit(1)  # a crash right after the file: no odop.stop()
'''


def test_a_crash_right_after_a_file_lists_it(tmp_path: Path, odop_home: Path) -> None:
    """The fail-open path: the ranks die without odop.stop(); the run is aborted, and the
    file written just before is in the account as cancelled, with the reason."""
    from odop.launch.account import take
    from odop.paths import RunPaths
    from tests.integration.helpers import odop_pids, wait_gone

    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "crash.py").write_text(CRASH)
    proc = subprocess.run([sys.executable, str(tmp_path / "crash.py"), str(data),
                           str(_tasks(tmp_path, data))], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path, env=child_env())
    assert proc.returncode == 1
    run_dir = next((odop_home / "runs").iterdir())
    assert not wait_gone(odop_pids(run_dir), 20)
    account = take(RunPaths(run_dir))
    assert account.unaccounted == 0 and account.submitted == 1, account
    assert account.cancelled == 1 and account.origins == {"file trigger": 1}, account
    [(why, n)] = account.reasons["cancelled"].items()
    assert "gone" in why or "ended without odop.stop()" in why or "SIGTERM" in why, why
