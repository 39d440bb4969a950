from __future__ import annotations

from odop.scheduler.preemption import PhaseBook
from odop.store.states import ALLOWED, ExecState


def test_a_phase_lends_its_rank_cores_and_takes_them_back() -> None:
    book = PhaseBook(["io"], min_lend_s=1.0)
    book.mark("n", 0, "io", True, [3], now=0.0)   # first seen: learned, not lent
    assert book.lent("n") == frozenset()
    assert book.mark("n", 0, "io", False, [3], now=5.0) == frozenset()
    assert book.mark("n", 0, "io", True, [3], now=6.0) == frozenset()
    assert book.lent("n") == {3} and book.lent("m") == frozenset()
    assert book.mark("n", 0, "io", False, [3], now=11.0) == {3}
    assert book.lent("n") == frozenset()


def test_short_phases_never_lend() -> None:
    book = PhaseBook(["io"], min_lend_s=1.0)
    for i in range(3):
        book.mark("n", 0, "io", True, [0], now=float(i))
        assert book.lent("n") == frozenset()
        assert book.mark("n", 0, "io", False, [0], now=i + 0.02) == frozenset()


def test_phases_not_named_idle_lend_nothing() -> None:
    book = PhaseBook(["io"])
    book.mark("n", 1, "compute", True, [1], now=0.0)
    assert book.lent("n") == frozenset()


def test_a_just_placed_execution_may_be_paused() -> None:
    assert ExecState.PAUSED in ALLOWED[ExecState.PLACED]
