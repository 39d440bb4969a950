"""``odop watch RUN``: a live terminal view of a run, redrawn in place.

On a terminal each frame overwrites the last (cursor home, every line cleared to its
end, the rest of the screen cleared once), with the cursor hidden until exit or
Ctrl-C. Elsewhere (a pipe, a file, a test) it prints plain frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from odop.cli.argtypes import positive_seconds
from odop.cli.common import add_run, grant, ids, run_paths, table
from odop.report.live import LiveRun, RunningTask, Snapshot

HOME, CLEAR_LINE, CLEAR_DOWN = "\x1b[H", "\x1b[K", "\x1b[J"
HIDE, SHOW, CLEAR_SCREEN = "\x1b[?25l", "\x1b[?25h", "\x1b[2J"
BAR = 16


def add_parser(sub: Any) -> None:
    p = sub.add_parser("watch", help="live view of a run: queue, running tasks, idle cores, power")
    add_run(p)
    p.add_argument("--interval", type=positive_seconds, default=1.0,
                   help="seconds between refreshes")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("--follow", action="store_true", help="keep going after the run has ended")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return watch(run_paths(args).root, interval_s=args.interval, once=args.once,
                 until_end=not args.follow)


def watch(run_dir: Path | str, interval_s: float = 1.0, once: bool = False,
          stream: TextIO = sys.stdout, *, until_end: bool = True) -> int:
    """Show the run live until it ends (``until_end``), Ctrl-C, or after one frame (``once``)."""
    live = LiveRun(Path(run_dir))
    tty = stream.isatty() and not once
    if tty:
        stream.write(HIDE + CLEAR_SCREEN)
    try:
        while True:
            snap = live.refresh()
            lines = render(snap)
            stream.write(_in_place(lines) if tty else "\n".join(lines) + "\n\n")
            stream.flush()
            if once or (until_end and snap.ended):
                return 0
            time.sleep(interval_s)
    except KeyboardInterrupt:
        return 0
    finally:
        if tty:
            stream.write(SHOW)
            stream.flush()


def _in_place(lines: list[str]) -> str:
    """One frame that overwrites the previous one without clearing the screen first."""
    return HOME + "".join(line + CLEAR_LINE + "\n" for line in lines) + CLEAR_DOWN


def render(snap: Snapshot) -> list[str]:
    """The frame's lines (plain text, no escape codes)."""
    state = "ended" if snap.ended else ("simulation running" if snap.sim_running
                                        else "simulation ended, draining")
    c = snap.counts
    lines = [f"odop watch  run {snap.run}  {time.strftime('%H:%M:%S', time.localtime(snap.t))}"
             f"  [{state}]",
             "queue: " + "  ".join(f"{k} {c.get(k, 0)}" for k in (
                 "queued", "placed", "running", "paused", "done", "failed"))
             + ("" if not c.get("cancelled") else f"  cancelled {c['cancelled']}"), ""]
    lines += _running(snap.running)
    lines += ["", "nodes:"]
    rows = [[n.node, str(len(n.cores)), str(len(n.idle)), ids(n.idle) or "-",
             "n/a" if n.watts is None else f"{n.watts:.1f} W", n.power_source,
             f"{n.sample_age_s:.1f} s"] for n in snap.nodes]
    lines += _indent(table(rows, ["node", "cores", "idle", "idle cores", "power", "source",
                                  "sample age"]) if rows else "no samples yet")
    carbon = "n/a" if snap.carbon_g_per_kwh is None else f"{snap.carbon_g_per_kwh:.0f} gCO2/kWh"
    total_w = sum(n.watts or 0.0 for n in snap.nodes)
    lines += ["", f"power now: {total_w:.1f} W (all nodes)   energy so far: "
                  f"{snap.joules_so_far:.0f} J",
              f"carbon now: {carbon} ({snap.signal_source})   emitted so far: "
              f"{snap.gco2_so_far:.3g} gCO2"]
    return lines


def _running(tasks: list[RunningTask]) -> list[str]:
    if not tasks:
        return ["running: none"]
    rows = [[t.id[:8], t.task, t.state, _where(t), f"{t.elapsed_s:.1f} s",
             "n/a" if t.expected_s is None else f"{t.expected_s:.1f} s", _bar(t.progress)]
            for t in tasks]
    return [f"running: {len(tasks)}", *_indent(table(rows, [
        "id", "task", "state", "node:cores", "elapsed", "expected", "progress"]))]


def _bar(progress: float | None) -> str:
    if progress is None:
        return "no estimate"
    filled = min(BAR, int(progress * BAR))
    note = " overdue" if progress > 1 else ""
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {100 * progress:.0f}%{note}"


def _where(t: RunningTask) -> str:
    """``node:cores``, and ``gpu i,j`` for a task granted GPUs."""
    return f"{t.node}:{grant(t.cores, t.gpus)}"


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.splitlines()]
