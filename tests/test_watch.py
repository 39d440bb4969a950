"""The live view: snapshot numbers, frame sections, in-place redraw on a terminal."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from odop.cli.watch import HIDE, HOME, SHOW, _where, render, watch
from odop.report.live import LiveRun, RunningTask
from odop.store.executions import RunStore
from odop.store.profiles import Measurement, ProfileStore
from odop.store.states import ExecState as S
from tests.test_report_support import T0, make_run, sample


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _start_running(run: Path, *, now: float) -> None:
    store = RunStore(run / "odop.db")
    try:
        store.add("e", "render", {}, now=now - 5)
        store.transition("e", S.PLACED, now=now - 3, node="n0", cores=[1])
        store.transition("e", S.RUNNING, now=now - 3, started_at=now - 3)
    finally:
        store.close()


def test_snapshot_running_task_against_profile(tmp_path: Path) -> None:
    run = make_run(tmp_path, ended=False)
    profiles = ProfileStore(tmp_path / "profiles.db")
    for i in range(3):
        profiles.record("render", "old", f"x{i}", Measurement(wall_s=5.0, cpu_s=5.0,
                                                             max_rss_bytes=1))
    profiles.close()
    _start_running(run, now=T0 + 15)
    snap = LiveRun(run).refresh(now=T0 + 15)
    assert not snap.ended and snap.counts["running"] == 1 and snap.counts["cancelled"] == 1
    [task] = snap.running
    assert task.task == "render" and task.cores == [1] and task.elapsed_s == pytest.approx(3.0)
    assert task.expected_s == pytest.approx(5.0 * 1.2)  # history quantile x margin
    assert task.progress == pytest.approx(3.0 / 6.0)
    [node] = snap.nodes
    # last sample: core 0 idle (simulation over), core 1 idle but granted to 'e'
    assert node.node == "n0" and node.cores == [0, 1] and node.idle == [0]
    assert node.watts == pytest.approx(10.0) and node.power_source == "cpu:model"
    assert snap.carbon_g_per_kwh == pytest.approx(480.0) and snap.signal_source == "static"
    assert snap.joules_so_far > 0 and snap.gco2_so_far > 0


def test_refresh_reads_only_appended_samples(tmp_path: Path) -> None:
    from odop_obs import Recorder

    run = make_run(tmp_path)
    live = LiveRun(run)
    first = live.refresh(now=T0 + 16).joules_so_far
    rec = Recorder(run / "samples", "n0")
    rec.emit(sample(99, T0 + 17, [1.0, 1.0]))  # 2 s after the last: (10 + 20) / 2 x 2
    rec.close()
    assert live.refresh(now=T0 + 17).joules_so_far == pytest.approx(first + 30.0)
    assert live.refresh(now=T0 + 17).joules_so_far == pytest.approx(first + 30.0)


def test_frame_sections(tmp_path: Path) -> None:
    run = make_run(tmp_path, ended=False)
    _start_running(run, now=T0 + 15)
    lines = render(LiveRun(run).refresh(now=T0 + 15))
    text = "\n".join(lines)
    for part in ("run synthetic", "queue: queued 0", "running 1", "running: 1", "render",
                 "n0:1", "no estimate", "nodes:", "idle cores", "10.0 W", "cpu:model",
                 "power now:", "carbon now: 480 gCO2/kWh (static)", "emitted so far:"):
        assert part in text, part
    assert "\x1b" not in text


def test_once_prints_a_plain_frame(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = Tty()
    assert watch(run, once=True, stream=out) == 0
    text = out.getvalue()
    assert "[ended]" in text and "running: none" in text and "\x1b" not in text


def test_terminal_redraws_in_place_until_the_run_ends(tmp_path: Path) -> None:
    run = make_run(tmp_path, ended=False)
    out = Tty()
    ender = threading.Timer(0.3, _end_scheduler, args=(run,))
    ender.start()
    try:
        assert watch(run, interval_s=0.05, stream=out) == 0
    finally:
        ender.cancel()
    text = out.getvalue()
    assert text.startswith(HIDE) and text.endswith(SHOW)
    assert text.count(HOME) >= 2 and "\x1b[K\n" in text and "[ended]" in text


def _end_scheduler(run: Path) -> None:
    store = RunStore(run / "odop.db")
    try:
        store.end_component("scheduler", "n0", 4242)
    finally:
        store.close()


def test_ctrl_c_restores_the_cursor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path, ended=False)

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("odop.cli.watch.time.sleep", interrupt)
    out = Tty()
    assert watch(run, stream=out) == 0
    assert out.getvalue().endswith(SHOW)


def test_pipe_gets_plain_frames(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = io.StringIO()
    assert watch(run, stream=out) == 0  # ended run: one frame, then stop
    assert "\x1b" not in out.getvalue() and out.getvalue().count("odop watch") == 1


def test_a_task_granted_gpus_shows_them_beside_its_cores() -> None:
    assert _where(RunningTask("e", "t", "running", "n0", [2, 3], 1.0, None, [1])) == "n0:2,3 gpu 1"
    assert _where(RunningTask("e", "t", "running", "n0", [2], 1.0, None)) == "n0:2"
