"""``odop profiles [TASK]``: declared requirements, measured history and estimates."""

from __future__ import annotations

import argparse
from typing import Any

from odop.cli.common import add_json, print_json, table
from odop.config import load_config
from odop.errors import UnknownTaskError
from odop.store.profiles import ProfileStore


def add_parser(sub: Any) -> None:
    p = sub.add_parser("profiles", help="show task profiles across runs")
    p.add_argument("task", nargs="?", help="one task (default: all)")
    p.add_argument("--config", help="odop config file (TOML)")
    add_json(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    home = load_config(args.config).home_path
    store = ProfileStore(home / "profiles.db")
    names = store.tasks()
    if args.task and args.task not in names:
        raise UnknownTaskError(args.task, names)
    summaries = [store.summary(n) for n in ([args.task] if args.task else names)]
    store.close()
    if args.json:
        print_json(summaries[0] if args.task else summaries)
        return 0
    rows = []
    for s in summaries:
        est, hist = s["estimate"], s["history"]
        rows.append([s["task"], str(hist["count"]), _f(hist.get("wall_s", {}).get("p50")),
                     _f(est["duration_s"]), _mib(est["memory_bytes"]), est["source"]])
    print(table(rows, ["task", "runs", "wall p50 s", "expect s", "expect mem", "from"]))
    return 0


def _f(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "-"


def _mib(b: int | None) -> str:
    return f"{b / 2**20:.0f}MiB" if b else "-"
