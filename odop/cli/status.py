"""``odop status RUN``: a run's executions and components."""

from __future__ import annotations

import argparse
import time
from typing import Any

from odop.cli.common import add_json, add_run, grant, print_json, run_paths, table
from odop.store.executions import RunStore

FIELDS = ("id", "task", "state", "node", "cores", "gpus", "spans", "attempt", "started_at",
          "ended_at", "exit_code", "reason", "cpu_s", "max_rss_bytes", "wall_s", "submitted_at",
          "output_cut_bytes")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("status", help="show a run's executions and components")
    add_run(p)
    add_json(p)
    p.add_argument("--watch", action="store_true", help="live view, refreshed every second")
    p.set_defaults(func=run)


def snapshot(run_dir: Any) -> dict[str, Any]:
    """The run's state as plain data (what ``--json`` prints)."""
    store = RunStore(run_dir / "odop.db", readonly=True)
    try:
        executions = [{k: row[k] for k in FIELDS} for row in store.all()]
        return {"run": run_dir.name, "counts": store.counts(), "executions": executions,
                "components": store.components(), "meta": store.meta()}
    finally:
        store.close()


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
    print(f"run {snap['run']}  ({paths.root})")
    print("  ".join(f"{k}: {v}" for k, v in sorted(snap["counts"].items())) or "no executions")
    rows = [[e["id"][:8], e["task"], e["state"], e["node"] or "", grant(e["cores"], e["gpus"]),
             _t(e["started_at"]), _dur(e["wall_s"]), _num(e["cpu_s"]), _mib(e["max_rss_bytes"]),
             "" if e["exit_code"] is None else str(e["exit_code"])]
            for e in snap["executions"]]
    if rows:
        print(table(rows, ["id", "task", "state", "node", "cores", "start", "wall", "cpu_s",
                           "rss", "exit"]))
    for e in snap["executions"]:
        if e["output_cut_bytes"]:
            print(f"{e['id'][:8]}  output cut: {e['output_cut_bytes']} bytes dropped from the "
                  "middle of its stdout/stderr (output_max_bytes)")
    comps = [[c["role"], c["node"], str(c["pid"]), _t(c["started_at"]),
              "running" if not c["ended_at"] else "ended"] for c in snap["components"]]
    print(table(comps, ["component", "node", "pid", "started", "state"]))
    return 0


def _t(t: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t)) if t else ""


def _dur(s: float | None) -> str:
    return f"{s:.2f}s" if s is not None else ""


def _num(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else ""


def _mib(b: int | None) -> str:
    return f"{b / 2**20:.0f}MiB" if b else ""
