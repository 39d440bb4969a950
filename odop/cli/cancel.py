"""``odop cancel RUN EXECUTION``: withdraw a queued execution or stop a running one."""

from __future__ import annotations

import argparse
from typing import Any

from odop.cli.argtypes import seconds
from odop.cli.common import add_run, request, run_paths, split_run
from odop.errors import OdopError
from odop.protocol import MsgType


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "cancel", help="cancel an execution of a running run",
        usage="odop cancel [-h] RUN EXECUTION [--config FILE] [--timeout S]\n"
              "       odop cancel [-h] EXECUTION --run RUN ...")
    p.add_argument("words", nargs="+", metavar="RUN EXECUTION",
                   help="the run (or --run RUN), then the execution id (a unique prefix is "
                        "enough)")
    add_run(p, positional=False)
    p.add_argument("--timeout", type=seconds, default=5.0, metavar="S",
                   help="seconds to wait for the scheduler's answer (default 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from odop.store.executions import RunStore

    name, words = split_run(args, args.words, "the execution id")
    if len(words) != 1:
        raise OdopError(f"give one execution id after the run; got {' '.join(words)!r}")
    paths = run_paths(args, name)
    store = RunStore(paths.db, readonly=True)
    ids = [e["id"] for e in store.all() if e["id"].startswith(words[0])]
    store.close()
    if len(ids) != 1:
        raise OdopError(f"execution {words[0]!r} matches {len(ids)} executions; "
                        "give a longer, unique prefix")
    request(paths, MsgType.CANCEL, args.timeout, execution=ids[0])
    print(f"cancelled {ids[0]}")
    return 0
