"""The longer fuzz run: the fuzz tests with many more examples (docs/security.md).

    python benchmarks/fuzz_long.py [--examples 20000] [--seed N]

Runs tests/test_fuzz_*.py with ``ODOP_FUZZ_EXAMPLES`` raised and prints one JSON line:
examples per property, wall seconds, pytest's exit status and its last summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20_000, help="examples per property")
    parser.add_argument("--seed", type=int, help="hypothesis seed (default: random)")
    args = parser.parse_args()
    env = dict(os.environ, ODOP_FUZZ_EXAMPLES=str(args.examples))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout", "0",
           *sorted(str(p) for p in (REPO / "tests").glob("test_fuzz_*.py"))]
    if args.seed is not None:
        cmd.append(f"--hypothesis-seed={args.seed}")
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    print(json.dumps({"examples": args.examples, "seed": args.seed,
                      "wall_s": round(time.monotonic() - start, 1), "rc": proc.returncode,
                      "summary": lines[-1] if lines else proc.stderr[-500:]}))
    if proc.returncode:
        sys.stderr.write(proc.stdout[-6000:])
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
