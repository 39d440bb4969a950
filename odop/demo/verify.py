"""Check the demo's task outputs against their snapshots.

Every snapshot in ``<out>/snapshots`` expects one ``reduce`` output (recomputed from
the snapshot and compared byte for byte) and one ``compress`` output (must
decompress to exactly the snapshot's bytes). Run as
``python -m odop.demo.verify OUT`` to print the result as one JSON line; the exit
status is 0 when there is no problem.
"""

from __future__ import annotations

import json
import lzma
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from odop.demo import layout
from odop.demo.tasks import load_snapshot, snapshot_stats, stats_json


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_outputs`; ``problems`` name the file at fault."""

    snapshots: int = 0
    expected: int = 0
    ok: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when at least one snapshot exists and every output is right."""
        return self.snapshots > 0 and not self.problems and self.ok == self.expected


def _check_reduce(snap: Path, out: Path) -> str | None:
    if not out.is_file():
        return f"missing reduce output {out}"
    try:
        want = stats_json(snapshot_stats(load_snapshot(snap)))
    except (OSError, ValueError) as exc:
        return f"unreadable snapshot {snap}: {exc}"
    if out.read_bytes() != want:
        return f"wrong reduce output {out}: differs from statistics recomputed from {snap.name}"
    return None


def _check_compress(snap: Path, out: Path) -> str | None:
    if not out.is_file():
        return f"missing compress output {out}"
    try:
        data = lzma.decompress(out.read_bytes())
    except lzma.LZMAError as exc:
        return f"corrupt compress output {out}: {exc}"
    if data != snap.read_bytes():
        return f"wrong compress output {out}: does not decompress to {snap.name}"
    return None


def verify_outputs(out_dir: str | Path) -> VerifyResult:
    """Check every snapshot's ``reduce`` and ``compress`` outputs in ``out_dir``."""
    result = VerifyResult()
    snaps = layout.list_snapshots(out_dir)
    if not snaps:
        result.problems.append(f"no snapshots in {Path(out_dir) / layout.SNAPSHOTS}")
    for snap in snaps:
        result.snapshots += 1
        checks = (
            _check_reduce(snap, layout.reduce_path(out_dir, snap)),
            _check_compress(snap, layout.compress_path(out_dir, snap)),
        )
        for problem in checks:
            result.expected += 1
            if problem is None:
                result.ok += 1
            else:
                result.problems.append(problem)
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m odop.demo.verify OUT``: print the result as JSON, 0 when it passed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m odop.demo.verify OUT_DIR", file=sys.stderr)
        return 2
    result = verify_outputs(args[0])
    print(json.dumps({**asdict(result), "passed": result.passed}))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
