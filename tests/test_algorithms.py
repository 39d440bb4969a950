"""The "write your own" example of docs/algorithms.md works as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from odop import plugins
from odop.config import load_config
from odop.errors import ConfigError
from odop.plugins import PLACEMENTS, SELECTIONS
from odop.scheduler.cluster import Node
from odop.scheduler.core import Decider
from odop.scheduler.placement import make_placement
from odop.scheduler.selection import Pending, make_selection

DOC = Path(__file__).resolve().parents[1] / "docs" / "algorithms.md"


def example() -> str:
    text = DOC.read_text()
    start = text.index("<!-- example: my_algorithms.py")
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match is not None
    return match.group(1)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Registrations in a test do not leak into the others."""
    saved = SELECTIONS.snapshot(), PLACEMENTS.snapshot()
    yield
    for live, old in zip((SELECTIONS, PLACEMENTS), saved, strict=True):
        live.restore(old)


def test_example_is_under_30_lines() -> None:
    assert len(example().strip().splitlines()) < 30


def test_documented_example_registers_and_decides(tmp_path: Path, registry: None,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    module = tmp_path / "my_algorithms.py"
    module.write_text(example())
    monkeypatch.setenv(plugins.PLUGINS_ENV, str(module))
    config = load_config({"selection": "fresh_first", "placement": "high_cores"})
    assert "fresh_first" in SELECTIONS.names() and "high_cores" in PLACEMENTS.names()

    d = Decider(make_selection(config.selection), make_placement(config.placement))
    d.specs["t"] = {"cpus_min": 1.0, "cpus_max": 2.0}
    n = Node("a", b"a", list(range(8)))
    n.update({"util": [0.0] * 8, "sim_bound": [0, 1, 2, 3]}, sim_alive=True)
    d.add_node(n)
    d.enqueue(Pending("retried", "t", {}, 0.0, attempt=1, priority=9))
    d.enqueue(Pending("low", "t", {}, 1.0))
    d.enqueue(Pending("high", "t", {}, 2.0, priority=5))
    placed = [(p.pending.execution, p.cores) for p in d.cycle(10.0)]
    assert placed == [("high", [6, 7]), ("low", [4, 5])]


def test_unknown_names_and_broken_plugins_are_config_errors(
        tmp_path: Path, registry: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="allowed"):
        make_selection("nope")
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('boom')\n")
    monkeypatch.setenv(plugins.PLUGINS_ENV, str(bad))
    with pytest.raises(ConfigError, match="broken.py"):
        SELECTIONS.names()
    with pytest.raises(ConfigError, match="name = "):
        SELECTIONS.register(type("Thing", (), {}))
