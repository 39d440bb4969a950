"""One snapshot's post-processing as a plain Python script: ``reduce`` then ``compress``.

    python benchmarks/compare_post.py SNAPSHOT OUTDIR

What the ``nice`` watchers of benchmarks/compare_watch.py start per snapshot, and what
odop runs as a program task (``program = "python"``) through a file trigger in the
wrapped scenarios of benchmarks/compare.py: the same command both ways.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from odop.demo import layout  # noqa: E402
from odop.demo.tasks import compress, reduce  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: compare_post.py SNAPSHOT OUTDIR", file=sys.stderr)
        return 2
    snap, out = argv
    reduce(snap, str(layout.reduce_path(out, snap)))
    compress(snap, str(layout.compress_path(out, snap)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
