"""``odop cancel EXECUTION``: withdraw a queued execution or stop a running one."""

from __future__ import annotations

import argparse
from typing import Any

from odop.cli.argtypes import seconds
from odop.cli.common import add_run, run_paths
from odop.errors import OdopError
from odop.launch.client import Client
from odop.protocol import MsgType


def add_parser(sub: Any) -> None:
    p = sub.add_parser("cancel", help="cancel an execution of a running run")
    p.add_argument("execution", help="execution id (a unique prefix is enough)")
    add_run(p, positional=False)
    p.add_argument("--timeout", type=seconds, default=5.0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from odop.store.executions import RunStore

    paths = run_paths(args)
    store = RunStore(paths.db, readonly=True)
    ids = [e["id"] for e in store.all() if e["id"].startswith(args.execution)]
    store.close()
    if len(ids) != 1:
        raise OdopError(f"execution {args.execution!r} matches {len(ids)} executions; "
                        "give a longer, unique prefix")
    client = Client(paths.scheduler_endpoint)
    try:
        reply = client.request(MsgType.CANCEL, args.timeout, execution=ids[0])
    finally:
        client.close()
    if reply is None or reply["type"] == "error":
        raise OdopError(reply["error"] if reply else "no answer from the scheduler")
    print(f"cancelled {ids[0]}")
    return 0
