"""The command of docs/launch.md that tries a 2-node odop job on one machine, run as written
(first in this folder: it brings up and removes its own cluster)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from odop.testing import cluster as vc
from odop.testing import slurmd
from tests.cluster.conftest import REPO, job_env

pytestmark = pytest.mark.timeout(300)


def test_documented_demo_prints_where_each_task_ran() -> None:
    reason = vc.unavailable() or slurmd.unavailable()
    if reason:
        pytest.skip(f"virtual cluster: {reason}")
    doc = (REPO / "docs" / "launch.md").read_text()
    section = doc[doc.index("## Try a 2-node job on one machine"):]
    line = re.search(r"```bash\n(.*?)\n```", section, re.S).group(1)  # type: ignore[union-attr]
    argv = shlex.split(line)
    assert argv[:2] == ["sudo", ".venv/bin/python"]
    argv = [sys.executable, *argv[2:]]  # already root, this test's interpreter
    done = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=job_env(),
                          timeout=240)
    assert done.returncode == 0, done.stderr + done.stdout
    ran = re.findall(r"task ran on node (\w+), cores \[(\d+)\]", done.stdout)
    assert len(ran) == 6 and {node for node, _ in ran} == {"odop1", "odop2"}, done.stdout
    assert vc.leftovers() == []
