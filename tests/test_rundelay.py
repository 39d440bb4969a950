"""Run delay read from /proc: ranks kept from a CPU show it, an idle one does not."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from odop.engine.rundelay import RunDelay, run_delay_ns

SPIN = "import time\nend = time.time() + 1.5\nwhile time.time() < end: pass\n"


def test_an_idle_process_waits_for_nothing() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"])
    try:
        delay = RunDelay()
        assert delay.sample([sleeper.pid]) is None  # the first look: nothing to compare
        time.sleep(0.5)
        assert delay.sample([sleeper.pid]) == pytest.approx(0.0, abs=0.01)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_two_spinners_on_one_core_wait_half_the_time() -> None:
    core = sorted(os.sched_getaffinity(0))[0]
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN],
                                 preexec_fn=lambda: os.sched_setaffinity(0, [core]))
                for _ in range(2)]
    try:
        delay = RunDelay()
        time.sleep(0.2)
        delay.sample([p.pid for p in spinners])
        time.sleep(0.8)
        waited = delay.sample([p.pid for p in spinners])
        assert waited is not None and waited > 0.5  # about one core's worth: each half
    finally:
        for p in spinners:
            p.kill()
            p.wait()


def test_a_gone_process_has_no_run_delay() -> None:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert run_delay_ns(p.pid) is None
    assert RunDelay().sample([p.pid]) is None
