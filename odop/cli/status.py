"""``odop status RUN``: a run's executions, components, and the account of its submissions."""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from odop.cli.common import add_json, add_run, grant, print_json, run_paths, table
from odop.launch.account import COUNTED, take
from odop.paths import RunPaths
from odop.store.executions import RunStore

FIELDS = ("id", "task", "state", "node", "cores", "gpus", "spans", "attempt", "started_at",
          "ended_at", "exit_code", "signal", "reason", "cpu_s", "max_rss_bytes", "wall_s",
          "submitted_at", "output_cut_bytes")
QUIET_REASONS = ("", "ok")
"""Reasons not worth a column: an execution that ended well, or one still going."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="show a run's executions and components")
    add_run(p)
    add_json(p)
    p.add_argument("--watch", action="store_true", help="live view, refreshed every second")
    p.set_defaults(func=run)


def snapshot(run_dir: Path) -> dict[str, Any]:
    """The run's state as plain data (what ``--json`` prints)."""
    store = RunStore(run_dir / "odop.db", readonly=True)
    try:
        executions = [{k: row[k] for k in FIELDS} for row in store.all()]
        snap = {"run": run_dir.name, "counts": store.counts(), "executions": executions,
                "components": store.components(), "meta": store.meta()}
    finally:
        store.close()
    return {**snap, "account": take(RunPaths(run_dir)).to_dict()}


def run(args: argparse.Namespace) -> int:
    paths = run_paths(args)
    if args.watch:
        from odop.cli.watch import watch

        watch(paths.root, interval_s=1.0)
        return 0
    snap = snapshot(paths.root)
    if args.json:
        print_json(snap)
        return 0
    print("\n".join(render(snap, paths.root)))
    return 0


def render(snap: dict[str, Any], root: Path) -> list[str]:
    """The text view: one block after another (each a list of lines; empty: left out)."""
    lines: list[str] = []
    for block in BLOCKS:
        lines += block(snap, root)
    return lines


def _title(snap: dict[str, Any], root: Path) -> list[str]:
    counts = "  ".join(f"{k}: {v}" for k, v in sorted(snap["counts"].items()))
    return [f"run {snap['run']}  ({root})", counts or "no executions"]


def _executions(snap: dict[str, Any], _root: Path) -> list[str]:
    ex = snap["executions"]
    if not ex:
        return []
    header = ["id", "task", "state", "node", "cores", "start", "wall", "cpu_s", "rss", "exit"]
    rows = [[e["id"][:8], e["task"], e["state"], e["node"] or "", grant(e["cores"], e["gpus"]),
             _t(e["started_at"]), _dur(e["wall_s"]), _num(e["cpu_s"]), _mib(e["max_rss_bytes"]),
             exit_text(e)] for e in ex]
    if any(_reason(e) for e in ex):
        header.append("reason")
        for row, e in zip(rows, ex, strict=True):
            row.append(_reason(e))
    return table(rows, header).splitlines()


def _components(snap: dict[str, Any], _root: Path) -> list[str]:
    comps = [[c["role"], c["node"], str(c["pid"]), _t(c["started_at"]),
              "running" if not c["ended_at"] else "ended"] for c in snap["components"]]
    return table(comps, ["component", "node", "pid", "started", "state"]).splitlines()


def _cut(snap: dict[str, Any], _root: Path) -> list[str]:
    return [f"{e['id'][:8]}  output cut: {e['output_cut_bytes']} bytes dropped from the middle "
            "of its stdout/stderr (output_max_bytes)" for e in snap["executions"]
            if e.get("output_cut_bytes")]


def _account(snap: dict[str, Any], _root: Path) -> list[str]:
    """Every submission and what became of it (docs/concepts.md#the-account)."""
    a = snap["account"]
    parts = [f"{a[k]} {k}" for k in ("done", *COUNTED) if a[k]]
    origins = ", ".join(f"{n} {o}" for o, n in sorted(a["origins"].items()))
    lines = [f"account: {a['submitted']} submitted ({origins or 'none'}): "
             f"{', '.join(parts) or 'nothing yet'}; {a['unaccounted']} unaccounted"]
    for state, reasons in sorted(a["reasons"].items()):
        lines += [f"  {n} {state}: {why}" for why, n in sorted(reasons.items())]
    return lines


BLOCKS: list[Callable[[dict[str, Any], Path], list[str]]] = [_title, _executions, _cut,
                                                              _components, _account]
"""The text view's blocks, in order: add one here to show more."""


def exit_text(e: dict[str, Any]) -> str:
    """The exit column: the exit code, else the signal that ended the process (SIGKILL
    for a time-limit or memory kill), else empty (not ended, or never started)."""
    if e["exit_code"] is not None:
        return str(e["exit_code"])
    if e.get("signal"):
        try:
            return signal.Signals(e["signal"]).name
        except ValueError:
            return f"signal {e['signal']}"
    return ""


def _reason(e: dict[str, Any]) -> str:
    return "" if (e["reason"] or "") in QUIET_REASONS else str(e["reason"])


def _t(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else ""


def _dur(s: float | None) -> str:
    return f"{s:.2f}s" if s is not None else ""


def _num(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else ""


def _mib(b: int | None) -> str:
    return f"{b / 2**20:.0f}MiB" if b else ""
