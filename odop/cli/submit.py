"""``odop submit RUN TASK key=value ...``: queue an execution from a shell."""

from __future__ import annotations

import argparse
import json
from typing import Any

from odop.cli.argtypes import seconds
from odop.cli.common import add_json, add_run, print_json, request, run_paths, split_run
from odop.errors import OdopError
from odop.protocol import MsgType, new_id


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "submit", help="queue one execution of a task in a running run",
        usage="odop submit [-h] RUN TASK [KEY=VALUE ...] [--config FILE] [--json] "
              "[--timeout S]\n       odop submit [-h] TASK [KEY=VALUE ...] --run RUN ...")
    p.add_argument("words", nargs="+", metavar="RUN TASK [KEY=VALUE ...]",
                   help="the run (or --run RUN), the task's name, and its arguments; values "
                        "are JSON when they parse as JSON, else strings")
    add_run(p, positional=False)
    add_json(p)
    p.add_argument("--timeout", type=seconds, default=5.0, metavar="S",
                   help="seconds to wait for the scheduler's acknowledgement (default 5)")
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
    name, words = split_run(args, args.words, "the task's name")
    paths = run_paths(args, name)
    task, params = words[0], parse_params(words[1:])
    execution = new_id()
    request(paths, MsgType.SUBMIT, args.timeout, execution=execution, task=task, args=params,
            rank=None)
    if args.json:
        print_json({"execution": execution, "task": task, "run": paths.name})
    else:
        print(execution)
    return 0
