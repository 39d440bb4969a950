"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from odop.config import load_config
from odop.errors import OdopError
from odop.paths import RunPaths, created_at, resolve_run
from odop.procs import node_name

if TYPE_CHECKING:
    from odop.protocol import MsgType


RUN_HELP = "run name under $ODOP_HOME/runs, a run folder, or 'latest' (the run created last)"


def add_run(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """The run, given as the first argument (``odop status RUN``) or as ``--run RUN``;
    without ``positional`` the command reads its positional words itself
    (:func:`split_run`), the run first among them."""
    if positional:
        p.add_argument("run", nargs="?", metavar="RUN", help=f"{RUN_HELP}; or --run RUN")
    p.add_argument("--run", dest="run_option", metavar="RUN",
                   help="the run, as an option instead of the first argument")
    p.add_argument("--config", help="odop config file (TOML)")


def add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")


def split_run(args: argparse.Namespace, words: list[str], rest: str) -> tuple[str, list[str]]:
    """``(run, the other words)``: the run is ``--run``, else the first of ``words``;
    ``rest`` names what must follow it (for the message when it is missing)."""
    if args.run_option:
        return args.run_option, words
    if len(words) < 2:
        raise OdopError(f"give the run, then {rest} (or the run as --run RUN)")
    return words[0], words[1:]


def chosen_run(args: argparse.Namespace) -> str:
    """The run the command line names, as the first argument or as ``--run``."""
    given = [x for x in (getattr(args, "run", None), getattr(args, "run_option", None)) if x]
    if not given:
        raise OdopError("which run? give it as the first argument or as --run RUN "
                        "(a name under $ODOP_HOME/runs, a run folder, or 'latest')")
    if len(set(given)) > 1:
        raise OdopError(f"two runs given, {given[0]!r} and --run {given[1]!r}; give one")
    return given[0]


def run_paths(args: argparse.Namespace, run: str | None = None) -> RunPaths:
    """The run's folder; for 'latest', says on stderr which run that is."""
    text = run if run is not None else chosen_run(args)
    paths = resolve_run(text, load_config(getattr(args, "config", None)).home_path)
    if text == "latest":
        created = created_at(paths.root)
        when = "" if created is None else time.strftime(" created %Y-%m-%d %H:%M:%S",
                                                        time.localtime(created))
        print(f"latest run: {paths.name}{when}", file=sys.stderr)
    return paths


def request(paths: RunPaths, mtype: MsgType, timeout_s: float, **fields: Any) -> dict[str, Any]:
    """Send one request to the run's scheduler and return its answer; an OdopError at once
    when the run has ended, or when no answer came in ``timeout_s`` seconds."""
    from odop.launch import discover
    from odop.launch.client import Client
    from odop.protocol import transport

    ended = ended_reason(paths)
    if ended is not None:
        raise OdopError(f"run {paths.name} has ended ({ended}); it takes no more requests")
    transport.use_run(paths.root)
    client = Client(discover.scheduler_endpoint(paths))
    try:
        reply = client.request(mtype, timeout_s, **fields)
    finally:
        client.close()
        transport.use_run(None)
    if reply is None:
        ended = ended_reason(paths)
        if ended is not None:
            raise OdopError(f"run {paths.name} has ended ({ended}); it takes no more requests")
        raise OdopError(f"no answer from the scheduler of run {paths.name} in {timeout_s}s")
    if reply["type"] == "error":
        raise OdopError(reply["error"])
    return reply


def ended_reason(paths: RunPaths) -> str | None:
    """Why the run's scheduler is known to be gone (every scheduler it recorded has ended,
    or the last one ran on this node and its process is dead), else None: a run whose
    scheduler is alive, elsewhere, or not started yet."""
    from odop.procs import pid_alive
    from odop.store.executions import RunStore

    store = RunStore(paths.db, readonly=True)
    try:
        rows = [c for c in store.components() if c["role"] == "scheduler"]
    finally:
        store.close()
    if not rows:
        return None
    last = rows[-1]
    if all(c["ended_at"] for c in rows):
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(last["ended_at"]))
        return f"its scheduler stopped at {when}"
    here = node_name()
    if not last["ended_at"] and last["node"] == here and not pid_alive(last["pid"]):
        return f"its scheduler, pid {last['pid']} on {here}, is gone"
    return None


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
