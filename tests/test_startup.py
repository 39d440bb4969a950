from __future__ import annotations

import os
from pathlib import Path

import pytest

from odop.launch import discover
from odop.launch.startup import spare_cores
from odop.paths import RunPaths

NODE = {0, 1, 2, 3}


@pytest.mark.parametrize(("masks", "spare"), [
    ([[0]], 3),                              # one bound rank: three idle cores
    ([[0], [1], [2], [3]], 0),               # a rank bound to every core
    ([[0, 1], [2, 3]], 0),                   # two ranks of two cores each
    ([[0, 1, 2, 3]], 3),                     # one unbound rank takes one core's worth
    ([[0, 1, 2, 3]] * 4, 0),                 # as many unbound ranks as cores
    ([[0], [0, 1, 2, 3]], 2),                # mixed
    ([[0, 1, 2, 3]] * 6, 0),                 # oversubscribed: never negative
])
def test_spare_cores(masks: list[list[int]], spare: int) -> None:
    assert spare_cores([{"cores": m} for m in masks], NODE) == spare


def test_an_agent_is_ready_only_once_it_says_so_and_lives(tmp_path: Path) -> None:
    paths = RunPaths(tmp_path / "run").create()
    assert not discover.wait_agent_ready(paths, "n", wait_s=0.05)
    discover.claim_agent(paths, "n", os.getpid())
    assert not discover.wait_agent_ready(paths, "n", wait_s=0.05)   # claimed, not ready
    discover.claim_agent(paths, "n", os.getpid(), ready=True)
    assert discover.wait_agent_ready(paths, "n", wait_s=0.05)
    discover.claim_agent(paths, "n", 2**22 + 1)                      # another, dead agent
    assert not discover.wait_agent_ready(paths, "n", wait_s=0.05)
