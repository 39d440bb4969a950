#!/usr/bin/env python3
"""Run an odop scheduler outside the simulation: ``python scripts/scheduler.py --run NAME
[--bind ENDPOINT] [--config FILE]`` (the same as ``odop scheduler``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from odop.cli.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["scheduler", *sys.argv[1:]]))
