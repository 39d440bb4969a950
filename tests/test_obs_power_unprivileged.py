"""RAPL counters that exist but this user may not read: said once, the fix named, the
model measures instead and every figure says so.

The tests run as root, whom ``chmod 000`` does not stop (CAP_DAC_OVERRIDE). So the
observer runs as a real ``python -m odop_obs`` process started through ``setpriv``
with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped from its bounding set: the kernel
then refuses the open with EACCES exactly as it does for a user facing the root-only
``energy_uj`` of Linux >= 5.10. (As a non-root user the test runs it plainly.) What it
does not prove: the udev rule itself, which needs a real powercap tree and udev.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from odop_obs.fakes import server_zones, write_powercap

pytestmark = pytest.mark.timeout(60)
UNPRIVILEGED = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-dac_override,-dac_read_search"]


def _observe(root: Path) -> tuple[list[dict[str, Any]], str]:
    """Samples and stderr of the standalone observer over ``root``, without privileges."""
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot drop the right to read")
    prefix = UNPRIVILEGED if os.geteuid() == 0 else []
    cmd = [*prefix, sys.executable, "-m", "odop_obs", "--powercap", str(root), "--count", "3",
           "--interval", "0.05", "--stdout", "--no-gpu", "--no-self"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()], out.stderr


def test_root_only_counters_are_said_once_with_the_fix_and_the_model_measures(
        tmp_path: Path) -> None:
    root = write_powercap(tmp_path / "powercap", server_zones())
    counters = sorted(root.glob("intel-rapl:*/energy_uj"))
    for counter in counters:
        counter.chmod(0o000)
    samples, stderr = _observe(root)
    (warning,) = [line for line in stderr.splitlines() if "power:" in line]
    assert "may not read" in warning and f"{root}/intel-rapl:0/energy_uj" in warning
    assert "udev" in warning and "powercap" in warning and "chmod o+r" in warning
    assert "utilisation model" in warning
    assert [len(s["power"]["problems"]) for s in samples] == [1, 0, 0]
    for sample in samples:
        assert sample["power"]["source"] == "model"
        assert sample["power"]["sources"] == {"cpu": "model"}
        assert sample["power"]["watts"]["cpu"] > 0 and sample["power"]["zones"] == {}


def test_the_same_tree_readable_is_measured(tmp_path: Path) -> None:
    """The control: with read permission the same fake tree is RAPL's, nothing is said."""
    root = write_powercap(tmp_path / "powercap", server_zones())
    for counter in root.glob("intel-rapl:*/energy_uj"):
        counter.chmod(0o444)
    samples, stderr = _observe(root)
    assert "power:" not in stderr
    assert all(s["power"]["sources"]["cpu"] == "rapl" for s in samples)
    assert all(s["power"]["problems"] == [] for s in samples)
