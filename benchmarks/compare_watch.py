"""The "background with nice" baseline of benchmarks/compare.py: a snapshot watcher.

Started beside ``mpiexec`` (same session), it polls the demo's snapshot folder and, for
every new snapshot, launches one low-priority process that runs the snapshot's
``reduce`` and ``compress`` tasks (``python benchmarks/compare_post.py SNAPSHOT OUT``, the
command odop runs in the wrapped scenarios), as people do without a scheduler:

- ``nice``: ``nice -n 19 python compare_post.py ...`` in the watcher's (and the
  simulation's) session;
- ``autogroup``: the same in its own session (``setsid``) whose autogroup is set to
  nice 19 (``echo 19 > /proc/self/autogroup``) before the exec.

When the file given by ``--stop`` appears (the simulation has ended) it launches what is
left, waits for every child and writes a JSON report: per child the snapshot, start and
end (Unix seconds, as seen by the watcher) and CPU seconds (``wait4`` rusage).

    python benchmarks/compare_watch.py --out DIR --variant nice|autogroup \
        --stop FILE --report FILE [--poll 0.02]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout

from odop.demo import layout  # noqa: E402

POST = ROOT / "benchmarks" / "compare_post.py"
"""What one background process runs: both tasks of one snapshot."""
AUTOGROUP_SH = 'echo 19 > /proc/self/autogroup && exec "$@"'
VARIANTS = ("nice", "autogroup")


def task_argv(out: Path, snap: Path, variant: str) -> list[str]:
    """The command line of the background process for ``snap``."""
    argv = ["nice", "-n", "19", sys.executable, str(POST), str(snap), str(out)]
    if variant == "autogroup":
        return ["sh", "-c", AUTOGROUP_SH, "sh", *argv]
    return argv


class Watcher:
    """Launches one process per new snapshot and reaps them with their rusage."""

    def __init__(self, out: Path, variant: str) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"watch variant {variant!r} is not known; allowed: {VARIANTS}")
        self.out, self.variant = out, variant
        self.seen: set[str] = set()
        self.running: dict[int, dict[str, Any]] = {}
        self.done: list[dict[str, Any]] = []
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))

    def scan(self) -> None:
        """Launch a process for every snapshot not seen before."""
        for snap in layout.list_snapshots(self.out):
            if snap.name in self.seen:
                continue
            self.seen.add(snap.name)
            proc = subprocess.Popen(task_argv(self.out, snap, self.variant), env=self.env,
                                    start_new_session=self.variant == "autogroup",
                                    stdout=subprocess.DEVNULL)
            self.running[proc.pid] = {"snap": snap.name, "start": time.time(), "proc": proc}

    def reap(self, block: bool = False) -> None:
        """Collect finished children (all of them when ``block``)."""
        while self.running:
            pid, status, usage = os.wait4(-1, 0 if block else os.WNOHANG)
            if pid == 0:
                return
            rec = self.running.pop(pid, None)
            if rec is None:
                continue
            rc = os.waitstatus_to_exitcode(status)
            rec.pop("proc").returncode = rc  # reaped here (for its rusage), not by Popen
            rec.update(end=time.time(), cpu_s=usage.ru_utime + usage.ru_stime, rc=rc)
            self.done.append(rec)

    def run(self, stop: Path, poll_s: float) -> list[dict[str, Any]]:
        while not stop.exists():
            self.scan()
            self.reap()
            time.sleep(poll_s)
        self.scan()
        self.reap(block=True)
        return self.done


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="the demo's output folder")
    ap.add_argument("--variant", choices=VARIANTS, required=True)
    ap.add_argument("--stop", type=Path, required=True, help="file whose appearance ends it")
    ap.add_argument("--report", type=Path, required=True, help="JSON report written at the end")
    ap.add_argument("--poll", type=float, default=0.02, help="seconds between scans")
    args = ap.parse_args(argv)
    done = Watcher(args.out, args.variant).run(args.stop, args.poll)
    args.report.write_text(json.dumps({"variant": args.variant, "tasks": done}))
    return 0 if all(t["rc"] == 0 for t in done) else 1


if __name__ == "__main__":
    sys.exit(main())
