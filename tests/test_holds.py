from __future__ import annotations

import math
from typing import Any

from odop.scheduler.core import Decider
from odop.scheduler.holds import Holds
from odop.scheduler.placement import make_placement
from odop.scheduler.selection import Pending, make_selection


class Policy:
    """Holds task 'green' until t=50; forgets on request."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def hold(self, task: str, spec: dict[str, Any], **kw: Any) -> float | None:
        return 50.0 if task == "green" else None

    def forget(self, execution: str) -> None:
        self.forgotten.append(execution)

    replans = 0

    def enlist(self, *a: Any, **kw: Any) -> None:
        pass

    def started(self, *a: Any) -> None:
        pass

    def finished(self, *a: Any) -> None:
        pass

    def planned(self, *a: Any) -> None:
        return None


def setup(alloc_end: float | None = None) -> tuple[Decider, Holds]:
    d = Decider(make_selection("fifo"), make_placement("first_fit"))
    d.specs = {"green": {"time_s": 10.0}, "plain": {"time_s": 10.0}, "long": {"time_s": 500.0}}
    return d, Holds(Policy(), d, alloc_end=alloc_end)


def test_held_until_due_then_back_in_the_queue() -> None:
    d, holds = setup()
    d.enqueue(Pending("a", "green", {}, 0.0))
    d.enqueue(Pending("b", "plain", {}, 0.0))
    holds.apply(10.0, has_free_cores=True)
    assert list(d.pending) == ["b"] and holds.next_due() == 50.0 and holds.waiting()
    holds.apply(49.0, has_free_cores=True)
    assert "a" not in d.pending
    holds.apply(50.0, has_free_cores=False)
    assert "a" in d.pending and not holds.held


def test_policy_not_asked_without_free_cores() -> None:
    d, holds = setup()
    d.enqueue(Pending("a", "green", {}, 0.0))
    holds.apply(10.0, has_free_cores=False)
    assert "a" in d.pending


def test_a_task_that_would_outlast_the_allocation_never_starts() -> None:
    d, holds = setup(alloc_end=100.0)
    d.enqueue(Pending("x", "long", {}, 0.0))
    d.enqueue(Pending("y", "plain", {}, 0.0, expected_s=20.0))
    holds.apply(10.0, has_free_cores=True)
    assert holds.held["x"][1] == math.inf and "y" in d.pending
    assert not holds.waiting()  # the drain does not wait for it


def test_drop_forgets() -> None:
    d, holds = setup()
    d.enqueue(Pending("a", "green", {}, 0.0))
    holds.apply(10.0, has_free_cores=True)
    assert holds.drop("a") and not holds.held

