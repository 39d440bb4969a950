"""``odop obs``: the standalone observer (same as ``python -m odop_obs``)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("obs", help="sample system, processes, GPUs and power (python -m odop_obs)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="the observer's own options: odop obs --help")
