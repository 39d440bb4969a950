"""The rank-side phase gate: long phases are always told, short ones at most once a second."""

from __future__ import annotations

from odop.phasegate import PhaseGate


def run(gate: PhaseGate, phase: str, start: float, seconds: float) -> tuple[bool, bool]:
    return gate.enter(phase, start), gate.leave(phase, start + seconds)


def test_unknown_and_long_phases_are_always_sent() -> None:
    gate = PhaseGate(min_lend_s=1.0)
    assert run(gate, "io", 0.0, 2.0) == (True, True)     # unknown: sent, learned long
    assert run(gate, "io", 2.1, 2.0) == (True, True)     # long: every time


def test_short_phases_are_sent_at_most_once_per_second() -> None:
    gate = PhaseGate(min_lend_s=1.0)
    sent = [run(gate, "io", 0.03 * i, 0.02) for i in range(100)]   # 3 s of 20 ms waits
    assert sent[0] == (True, True)
    assert all(enter == leave for enter, leave in sent)            # pairs stay whole
    assert 3 <= sum(enter for enter, _ in sent) <= 4
    assert gate.times.typical_s["io"] < 0.1


def test_a_phase_that_grows_long_is_sent_again() -> None:
    gate = PhaseGate(min_lend_s=1.0)
    for i in range(10):
        run(gate, "wait", 0.01 * i, 0.005)
    assert run(gate, "wait", 0.5, 3.0) == (False, False)   # still thought short: held back
    assert gate.times.typical_s["wait"] >= 1.0                   # but learned
    assert run(gate, "wait", 4.0, 3.0) == (True, True)


def test_phases_are_gated_each_on_its_own() -> None:
    gate = PhaseGate(min_lend_s=1.0)
    run(gate, "io", 0.0, 0.01)
    assert run(gate, "gpu", 0.1, 0.01) == (True, True)
