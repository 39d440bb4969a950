"""Helpers for integration tests that start real odop processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import zmq

from odop.launch.client import Client
from odop.paths import RunPaths
from odop.procs import pid_alive
from odop.protocol import MsgType, decode, encode, make, validate
from odop.store.executions import RunStore

SIM = '''
import json, os, sys
import odop

@odop.task(name="record", time="5s", cpus=1)
def record(out, sleep=0.0):
    import time
    time.sleep(sleep)
    with open("/proc/self/status") as fh:
        allowed = [l.split(":")[1].strip() for l in fh if l.startswith("Cpus_allowed_list")][0]
    info = {"allowed": allowed, "affinity": sorted(os.sched_getaffinity(0)),
            "execution": os.environ["ODOP_EXECUTION"], "t": time.time()}
    with open(out, "w") as fh:
        json.dump(info, fh)

if __name__ == "__main__":
    out, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    comm = None
    if mode.startswith("mpi"):
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    rank = comm.rank if comm else 0
    run = odop.start(run_name=os.environ.get("RUN_NAME"))
    ids = [odop.submit("record", out=f"{out}/r{rank}-{i}.json",
                       sleep=float(os.environ.get("TASK_SLEEP", "0"))) for i in range(n)]
    print(json.dumps({"rank": rank, "run": str(run.root), "ids": ids}), flush=True)
    if os.environ.get("NO_STOP"):
        import time
        time.sleep(float(os.environ.get("LINGER", "0")))
        sys.exit(0)
    summary = odop.stop()
    if rank == 0:
        print(json.dumps({"summary": summary}), flush=True)
'''


def write_sim(folder: Path) -> Path:
    path = folder / "sim.py"
    path.write_text(SIM)
    return path


def run_script(folder: Path, code: str, timeout_s: float = 120) -> dict[str, Any]:
    """Write ``code`` to ``folder/sim.py``, run it there and return the JSON object on
    its last line of output (it must exit 0)."""
    import json

    from tests.conftest import child_env

    (folder / "sim.py").write_text(code)
    proc = subprocess.run([sys.executable, "sim.py"], capture_output=True, text=True,
                          timeout=timeout_s, cwd=folder, env=child_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def executions(run_dir: Path) -> list[dict[str, Any]]:
    store = RunStore(run_dir / "odop.db", readonly=True)
    try:
        return store.all()
    finally:
        store.close()


def components(run_dir: Path) -> list[dict[str, Any]]:
    store = RunStore(run_dir / "odop.db", readonly=True)
    try:
        return store.components()
    finally:
        store.close()


def odop_pids(run_dir: Path) -> list[int]:
    """Pids of the run's scheduler, agents and tasks."""
    pids = [c["pid"] for c in components(run_dir)]
    return pids + [e["pid"] for e in executions(run_dir) if e["pid"]]


def wait_gone(pids: list[int], timeout_s: float) -> list[str]:
    """Wait until every pid has exited; returns the survivors, each described."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        alive = [p for p in pids if pid_alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [describe(p) for p in pids if pid_alive(p)]


def describe(pid: int) -> str:
    """``pid`` with its command line, state and where it waits in the kernel."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"{pid} ({exc})"
    return f"{pid} [{state} in {wchan or '-'}] {cmd.strip()[:200]}"


def log_tails(run_dir: Path, lines: int = 15) -> str:
    """The last lines of each of the run's logs, for an assertion's message."""
    return "\n".join(f"== {log.name}\n" + "\n".join(log.read_text().splitlines()[-lines:])
                     for log in sorted((run_dir / "logs").glob("*.log")))


def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@contextmanager
def agent_behind_router(paths: RunPaths, home: Path, log: Path
                        ) -> Iterator[tuple[zmq.Socket, bytes, subprocess.Popen]]:
    """A real agent whose 'scheduler' is a ROUTER bound here: (router, identity, process),
    after its HELLO; stopped (SHUTDOWN, then TERM, then KILL) on the way out."""
    from tests.conftest import child_env

    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    router.bind(paths.scheduler_endpoint)
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "odop", "agent", "--run", str(paths.root),
                                 "--node", "n", "--interval", "0.2", "--connect",
                                 paths.scheduler_endpoint],
                                env=child_env(ODOP_HOME=str(home)), stderr=out)
    ident = b""
    try:
        assert router.poll(30_000), "no HELLO from the agent"
        ident, data = router.recv_multipart()[:2]
        assert validate(decode(data))[0] is MsgType.HELLO
        yield router, ident, proc
    finally:
        stop_agent(router, ident, proc)


def stop_agent(router: zmq.Socket, ident: bytes, proc: subprocess.Popen) -> None:
    """SHUTDOWN the agent (it takes its tasks with it); SIGTERM, then SIGKILL, if it lingers."""
    if ident:
        router.send_multipart([ident, encode(make(MsgType.SHUTDOWN, reason="test over"))])
    for stop in (proc.terminate, proc.kill):
        try:
            proc.wait(10)
            break
        except subprocess.TimeoutExpired:
            stop()
    else:
        proc.wait(10)
    router.close(0)


@contextmanager
def live_run(home: Path, name: str, *, cores: str = "0", config: Path | None = None,
             agents: dict[str, str] | None = None, agent_args: tuple[str, ...] = (),
             **env: str) -> Iterator[tuple[RunPaths, Client]]:
    """A run served by a real scheduler and agents (``agents``: node -> cores; by default
    node ``n`` on ``cores``; a sample every 0.2 s; ``agent_args`` added, e.g. the
    simulation's pids), started from the shell with ``env`` added, and a client to it;
    (run folder, client). All are killed on the way out."""
    from tests.conftest import child_env

    paths = RunPaths(home / "runs" / name).create()
    RunStore(paths.db).close()
    extra = ["--config", str(config)] if config else []
    agent_cores = agents or {"n": cores}
    procs = [subprocess.Popen([sys.executable, "-m", "odop", *args],
                              env=child_env(ODOP_HOME=str(home), **env),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for args in (["scheduler", "--run", name, *extra],
                          *(["agent", "--run", name, "--node", node, "--cores", on,
                             "--interval", "0.2", *agent_args]
                            for node, on in agent_cores.items()))]
    client = Client(paths.scheduler_endpoint)
    try:
        yield paths, client
    finally:
        client.close()
        for proc in procs:
            proc.kill()
            proc.wait(10)


def field_checksum(steps: int, ranks: int = 2, size: int = 100) -> float:
    """The test simulations' result without odop: each rank steps the field
    ``arange(size) + rank`` ``steps`` times by ``sqrt(f*f + 1)``; the sum over ranks."""
    import numpy as np

    total = 0.0
    for rank in range(ranks):
        field = np.arange(float(size)) + rank
        for _ in range(steps):
            field = np.sqrt(field * field + 1.0)
        total += float(field.sum())
    return total


def odop_process(home: Path, role: str, wait_s: float = 20.0) -> psutil.Process | None:
    """The live ``odop <role>`` process (scheduler, agent) of the runs under ``home``,
    waiting up to ``wait_s`` seconds for it to appear."""
    end = time.monotonic() + wait_s
    while True:
        for proc in psutil.process_iter(["cmdline", "environ"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                if f"odop {role}" in cmd and (proc.info["environ"] or {}).get(
                        "ODOP_HOME") == str(home):
                    return proc
            except psutil.Error:
                continue
        if time.monotonic() >= end:
            return None
        time.sleep(0.1)
