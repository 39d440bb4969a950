"""``python -m odop`` is the ``odop`` command."""

import sys

from odop.cli.main import main

sys.exit(main())
