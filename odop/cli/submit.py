"""``odop submit TASK key=value ...``: queue an execution from a shell."""

from __future__ import annotations

import argparse
import json
from typing import Any

from odop.cli.argtypes import seconds
from odop.cli.common import add_json, add_run, print_json, run_paths
from odop.errors import OdopError
from odop.launch.client import Client
from odop.protocol import MsgType, new_id


def add_parser(sub: Any) -> None:
    p = sub.add_parser("submit", help="queue one execution of a task in a running run")
    p.add_argument("task", help="task name")
    p.add_argument("params", nargs="*", metavar="KEY=VALUE",
                   help="task arguments; values are JSON when they parse as JSON, else strings")
    add_run(p, positional=False)
    add_json(p)
    p.add_argument("--timeout", type=seconds, default=5.0, help="seconds to wait for the scheduler")
    p.set_defaults(func=run)


def parse_params(params: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise OdopError(f"argument {item!r} must look like key=value with a Python name")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    paths = run_paths(args)
    client = Client(paths.scheduler_endpoint)
    execution = new_id()
    try:
        reply = client.request(MsgType.SUBMIT, args.timeout, execution=execution, task=args.task,
                               args=parse_params(args.params), rank=None)
    finally:
        client.close()
    if reply is None:
        raise OdopError(f"no answer from the scheduler of run {paths.name} in {args.timeout}s")
    if reply["type"] == "error":
        raise OdopError(reply["error"])
    if args.json:
        print_json({"execution": execution, "task": args.task, "run": paths.name})
    else:
        print(execution)
    return 0
