"""``python -m odop_obs``: monitor this node without scheduling (see odop_obs.cli)."""

from __future__ import annotations

import sys

from odop_obs.cli import main

if __name__ == "__main__":
    sys.exit(main())
