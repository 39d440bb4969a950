"""The cost of ``submit`` while the scheduler is hung, and delivery once it answers again.

A real scheduler (``python -m odop scheduler``) is stopped with SIGSTOP; one client (odop's
own, journalled, as a rank holds it) submits ``--submissions`` as fast as it can, calling
``pump()`` after each submit as ``odop.submit`` does; the time of each submit+pump is
recorded. Then the scheduler is continued (SIGCONT) and the client flushes; the run
database must hold every submission exactly once. ``--client FILE`` measures another
client module (e.g. an earlier odop's ``client.py``, taken with ``git show``) the same way.

Usage: python benchmarks/hung_submit.py [--json] [--submissions 20000] [--client FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _client_class(path: str | None) -> Any:
    if path is None:
        from odop.launch.client import Client

        return Client
    spec = importlib.util.spec_from_file_location("measured_client", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--client {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Client


def measure(n: int, client_file: str | None) -> dict[str, Any]:
    from odop.launch.discover import scheduler_endpoint
    from odop.launch.journal import Journal
    from odop.paths import RunPaths
    from odop.protocol import MsgType, new_id, transport
    from odop.tasks.spec import parse_spec

    with tempfile.TemporaryDirectory(prefix="odop-hung-") as tmp:
        run = Path(tmp) / "home" / "runs" / "hung"
        env = dict(os.environ, ODOP_HOME=str(Path(tmp) / "home"), PYTHONPATH=str(REPO))
        sched = subprocess.Popen([sys.executable, "-m", "odop", "scheduler", "--run", str(run)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            endpoint = scheduler_endpoint(RunPaths(run), wait_s=60)
            transport.use_run(run)
            client = _client_class(client_file)(
                endpoint, rank=0,
                journal=Journal(run / "journal" / "r0.jnl"))
            (Path(tmp) / "t.py").write_text("def t(n):\n    pass\n")
            spec = parse_spec({"name": "t", "function": f"{tmp}/t.py:t"}, source="hung")
            client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
            client.flush(30.0)
            os.kill(sched.pid, signal.SIGSTOP)
            costs, ids = [], []
            for k in range(n):
                ids.append(new_id())
                t0 = time.perf_counter()
                client.submit(ids[-1], "t", {"n": k})
                client.pump()
                costs.append(time.perf_counter() - t0)
            os.kill(sched.pid, signal.SIGCONT)
            t0 = time.perf_counter()
            delivered = client.flush(300.0)
            flush_s = time.perf_counter() - t0
            client.close()
        finally:
            os.kill(sched.pid, signal.SIGCONT)
            sched.kill()
            sched.wait()
        db = sqlite3.connect(run / "odop.db")
        recorded = dict(db.execute("SELECT id, COUNT(*) FROM executions GROUP BY id"))
        db.close()
    ms = np.array(costs) * 1000
    return {"client": client_file or "odop.launch.client", "submissions": n,
            "submit_ms_p50": round(float(np.percentile(ms, 50)), 3),
            "submit_ms_p99": round(float(np.percentile(ms, 99)), 3),
            "submit_ms_max": round(float(ms.max()), 3),
            "all_acked": delivered, "flush_after_sigcont_s": round(flush_s, 2),
            "recorded_once": sum(1 for i in ids if recorded.get(i) == 1),
            "missing": sum(1 for i in ids if i not in recorded)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--submissions", type=int, default=20_000)
    p.add_argument("--client", help="another client module to measure (a client.py file)")
    args = p.parse_args(argv)
    if args.submissions < 1:
        p.error(f"--submissions {args.submissions}: must be at least 1")
    result = measure(args.submissions, args.client)
    result["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
