"""The commands of docs/benchmarks.md's scale section run as written (sizes shortened by
options appended after them: argparse keeps the last value)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env

REPO = Path(__file__).resolve().parent.parent
SECTION = (REPO / "docs" / "benchmarks.md").read_text().split(
    "## One scheduler against many nodes")[1]
SHORT = {"scale.py": ["--nodes", "2", "--seconds", "1", "--warmup", "1", "--drain", "2",
                      "--rate", "10"],
         "hung_submit.py": ["--submissions", "300"]}


def commands() -> list[str]:
    blocks = re.findall(r"```\n(.*?)```", SECTION, flags=re.S)
    return [line for block in blocks for line in block.splitlines()
            if line.startswith("python benchmarks/") and "--client" not in line]


def test_the_section_shows_its_commands() -> None:
    assert [c.split()[1] for c in commands()] == ["benchmarks/scale.py", "benchmarks/scale.py",
                                                  "benchmarks/hung_submit.py"]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("command", commands())
def test_a_command_of_the_doc_runs(command: str, tmp_path: Path) -> None:
    argv = shlex.split(command)
    argv = [sys.executable, *argv[1:], *SHORT[Path(argv[1]).name]]
    out = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=230,
                         env=child_env(ODOP_HOME=str(tmp_path)))
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    if "rows" in result:
        assert result["rows"][0]["dropped"] == 0 and result["rows"][0]["invalid"] == 0
    else:
        assert result["recorded_once"] == 300 and result["missing"] == 0, result
