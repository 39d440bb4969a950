"""The ``odop`` command: one subcommand per module in this package."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from odop.errors import OdopError

COMMANDS = ("demo", "run", "scheduler", "agent", "obs", "submit", "cancel", "status", "watch",
            "profiles", "report", "export", "shift", "completion")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of command ``only`` alone (each command module
    imports what it needs: a daemon need not import the report's plotting stack)."""
    parser = argparse.ArgumentParser(
        prog="odop", description="Run post-processing tasks on idle cores during a simulation.")
    parser.add_argument("--version", action="version", version="odop 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in (only,) if only in COMMANDS else COMMANDS:
        try:
            module = __import__(f"odop.cli.{name}", fromlist=["add_parser"])
        except ModuleNotFoundError as exc:  # a command still being written
            if exc.name != f"odop.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["obs"]:  # the observer has its own parser
        from odop_obs.cli import main as obs_main

        return obs_main(argv[1:], prog="odop obs")
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except OdopError as exc:
        print(f"odop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into e.g. head, which has closed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
