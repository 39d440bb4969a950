"""docs/quickstart.md's walkthrough, taken from the page as written and run end to end:
every file it says to save, every command in its `bash` blocks, in order, in an empty
folder; then what the page says happened is checked. Also: the time limit is documented
where `time` is (issue 18: item 7)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from odop.config import Config
from tests.conftest import child_env, mpiexec

DOCS = Path(__file__).resolve().parent.parent / "docs"
SECTION = ("## Walkthrough", "## Next")
"""The walkthrough: from its heading to the next page's pointers."""
SAVE = re.compile(r"(?:[Ss]ave\s+(?:this|it)|its\s+function)\s+as\s+`([^`]+)`:\n\n"
                  r"```\w*\n(.*?)```", re.S)
"""A file to save: 'Save this as `PATH`:' (or 'save it', 'its function as') and its block."""
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def walkthrough() -> str:
    text = (DOCS / "quickstart.md").read_text()
    start = text.index(SECTION[0])
    return text[start:text.index(SECTION[1], start)]


def files(text: str) -> dict[str, str]:
    """Each file the walkthrough says to save: path -> content, as written."""
    return {m[1]: m[2] for m in SAVE.finditer(text)}


def commands(text: str) -> list[str]:
    """Every line of every `bash` block, in order."""
    return [line for lang, body in BLOCK.findall(text) if lang == "bash"
            for line in body.splitlines() if line.strip() and not line.startswith("#")]


def outputs(text: str) -> list[str]:
    """The blocks that show output (no language)."""
    return [body for lang, body in BLOCK.findall(text) if not lang]


def test_the_walkthrough_is_complete() -> None:
    text = walkthrough()
    assert set(files(text)) == {"sim.py", "plain_sim.py", "tasks/summary.toml", "tasks/post.py"}
    cmds = commands(text)
    assert cmds[0].startswith("export ODOP_HOME=")
    for needed in ("mpiexec -n 2 -bind-to core python sim.py",
                   "odop run --tasks tasks -- mpiexec -n 2 -bind-to core python plain_sim.py",
                   "odop status latest", "odop report latest"):
        assert needed in cmds, needed
    assert "@odop.task(" in files(text)["sim.py"]
    assert 'trigger = { file = "snaps/*.npy" }' in files(text)["tasks/summary.toml"]


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.skipif(mpiexec() is None, reason="mpiexec not found")
def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    text = walkthrough()
    for path, body in files(text).items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(body)
    script = "set -euxo pipefail\n" + "\n".join(commands(text)) + "\n"
    env = child_env()
    env.pop("ODOP_HOME", None)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=400)
    log = f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.returncode == 0, log

    # 1. the decorator simulation: every snapshot of both ranks has its summary
    snaps = sorted(p.name for p in tmp_path.glob("snap_r*_*.npy"))
    assert len(snaps) == 6 and all((tmp_path / f"{s}.txt").exists() for s in snaps), log
    assert "odop: 6 tasks done, 0 failed" in done.stdout, log
    # 2. wrapped mode: the file trigger ran the spec file's task on every snapshot
    wrapped = sorted((tmp_path / "snaps").glob("*.npy"))
    assert len(wrapped) == 6, log
    missing = [p.name for p in wrapped if not Path(f"{p}.txt").exists()]
    assert not missing, f"wrapped mode left {missing} without a summary\n{log}"
    assert "tasks: 6 submitted, 6 done" in done.stderr, log
    # 3. the look at the runs: latest is the wrapped run, all done, and a report
    runs = sorted((tmp_path / ".odop" / "runs").iterdir())
    assert len(runs) == 2, log
    lines = done.stdout.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith(f"run {runs[-1].name} "))
    assert lines[title + 1] == "done: 6", log  # the wrapped run: every task done, none failed
    shown = [b for b in outputs(text) if b.startswith("run ")][0].splitlines()
    header = next(line for line in shown if line.startswith("id "))
    assert header.split() in [line.split() for line in done.stdout.splitlines()], log
    assert "summary  done" in done.stdout and "latest run: " in done.stderr
    html = [line for line in done.stdout.splitlines() if line.endswith("report.html")]
    assert html and Path(html[-1]).exists(), log


def test_the_time_limit_is_documented_with_time() -> None:
    """docs/tasks.md says, where `time` is, that a task is killed at time x factor."""
    text = (DOCS / "tasks.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `time` "))
    factor = Config().time_limit_factor
    assert factor is not None
    assert "time_limit_factor" in row and f"{factor:g} by default" in row
    assert "(#time-limit)" in row
    section = text[text.index("### Time limit"):]
    section = section[:section.index("\n#", 1)]
    for words in ("killed", "time_limit_factor", f"{factor:g} by default", "`time = \"1s\"` is "
                  "killed at 4 s", "time limit exceeded", "SIGKILL", "no limit"):
        assert " ".join(words.split()) in " ".join(section.split()), words
