"""odop.memory: the rate-limited heap trimmer (real glibc where present, else a no-op)."""

from __future__ import annotations

import platform

import pytest

from odop import memory
from odop.memory import HeapTrimmer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_trims_at_most_once_per_period() -> None:
    calls: list[int] = []
    clock = Clock()
    trimmer = HeapTrimmer(60.0, trim=lambda pad: calls.append(pad) or 1, clock=clock)
    assert not trimmer.maybe_trim()  # not before a full period since it was made
    clock.now += 59.0
    assert not trimmer.maybe_trim()
    clock.now += 1.0
    assert trimmer.maybe_trim()
    assert not trimmer.maybe_trim()
    clock.now += 60.0
    assert trimmer.maybe_trim()
    assert calls == [0, 0]
    assert trimmer.trims == 2


def test_no_op_without_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_load_trim", lambda: None)
    clock = Clock()
    trimmer = HeapTrimmer(0.0, clock=clock)
    clock.now += 1.0
    assert not trimmer.available
    assert not trimmer.maybe_trim()
    assert trimmer.trims == 0


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_real_trim_gives_fragmented_free_heap_back() -> None:
    psutil = pytest.importorskip("psutil")
    proc = psutil.Process()
    trimmer = HeapTrimmer(0.0)
    assert trimmer.available
    blocks = [bytearray(8000) for _ in range(10_000)]  # 80 MB of malloc'd chunks
    kept = blocks[::16]  # every 16th stays: free pages inside the heap, none at its top
    del blocks
    before = proc.memory_info().rss
    assert trimmer.maybe_trim()
    assert proc.memory_info().rss < before - 20 * 2**20  # bytes
    assert len(kept) == 625
    assert isinstance(memory.trim_heap(), bool)
