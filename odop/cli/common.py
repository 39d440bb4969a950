"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from odop.config import load_config
from odop.paths import RunPaths, resolve_run


def add_run(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    if positional:
        p.add_argument("run", help="run name under $ODOP_HOME/runs, a run folder, or 'latest'")
    else:
        p.add_argument("--run", required=True, help="run name or run folder")
    p.add_argument("--config", help="odop config file (TOML)")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def run_paths(args: argparse.Namespace) -> RunPaths:
    return resolve_run(args.run, load_config(getattr(args, "config", None)).home_path)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, default=str)
    sys.stdout.write("\n")
    sys.stdout.flush()


def table(rows: list[list[str]], header: list[str]) -> str:
    """A plain aligned text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False)).rstrip()
             for r in [header, *rows]]
    return "\n".join(lines)


def ids(numbers: list[int]) -> str:
    """Core or GPU numbers as ``0,2,3``."""
    return ",".join(map(str, numbers))


def grant(cores: list[int], gpus: list[int]) -> str:
    """What an execution holds: its cores, and ``gpu i,j`` when it holds GPUs."""
    return ids(cores) + (f" gpu {ids(gpus)}" if gpus else "")
