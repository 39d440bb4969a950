"""Scale: one real scheduler process against N simulated nodes, over tcp:// with CURVE.

For each node count, a fresh run: ``python -m odop scheduler --bind tcp://127.0.0.1:*``
(the process users run) and ``--drivers`` driver processes that play the nodes. Each
simulated node is:

- an agent: a DEALER (identity ``agent:<node>``, CURVE on loopback) that says HELLO, then
  sends every second a SAMPLE shaped like the real agent's node view
  (``odop.engine.agent.node_view``) at 128 cores (120 bound to ranks, 8 idle), answers each
  START with STARTED and, ``--task-s`` later, EXITED (resent until acknowledged), as an
  engine would; and pings the scheduler with a HEARTBEAT when it has heard nothing for
  ``odop.engine.upstream.PING_S``, as the real agent does;
- its ranks' submissions, together ``--rate`` submissions/s over the whole job, each
  resent until acknowledged. With ``--topology agents`` (the default, what ranks do now)
  they go through their node's agent: what queued up in one turn of the driver (10 ms) goes
  in one RELAY on the agent's connection, and the acks come back in DELIVER messages, as
  ``odop.engine.relay.Relay`` does. With ``--topology direct`` (before the relay) each node
  has one rank DEALER of its own to the scheduler.

Measured over ``--seconds`` after ``--warmup``: the scheduler's CPU (% of one core, all its
threads), submit→START latency (submit time carried in the task's arguments, read when the
START reaches the node), its resident memory, SQLite transactions/s on the run database
(the scheduler's own count, from a STATUS request), and messages dropped (submissions or
exits never acknowledged, sends ZeroMQ refused, acknowledged submissions never started)
and invalid (the scheduler's count plus ERROR replies the drivers got). The drivers share
the machine with the scheduler: on a small machine their load is part of the picture
(``drivers_cpu_pct``).

Usage: python benchmarks/scale.py [--json] [--nodes 16,64,256,1000] [--rate 100]
[--seconds 20] [--warmup 5] [--drivers 2] [--task-s 0.5] [--topology agents|direct]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from odop.engine.upstream import PING_S  # noqa: E402 (the checkout, not an install)

CORES = 128
BOUND = 120
"""Cores of a simulated node its ranks are bound to (the other 8 are idle)."""
SAMPLE_S = 1.0
RESEND_S = 1.0
TICK_S = 0.01
"""A driver's granularity for timed sends (seconds); receiving is not delayed by it."""
TASK = "def noop(t, n):\n    pass\n"
TOPOLOGIES = {"agents": "ranks through their node's agent: one connection per node",
              "direct": "each rank its own connection to the scheduler"}


# -- a driver: many simulated nodes in one process --------------------------------------
def node_sample(node: str, t: float) -> dict[str, Any]:
    """A node view as the real agent sends it, at 128 cores with 120 bound to ranks."""
    return {"t": t, "host": node, "cores": list(range(CORES)),
            "util": [0.97] * BOUND + [0.02] * (CORES - BOUND),
            "sim_bound": list(range(BOUND)), "sim_use": [0.97] * BOUND,
            "sim_cpu": 0.97 * BOUND, "sim_n": BOUND, "power_w": 420.0,
            "power_source": "rapl", "mem_total": 256 << 30, "mem_available": 200 << 30,
            "gpus": [], "sim_expected": True}


class Driver:
    """Plays ``nodes``: their agents and their ranks' submissions (``rate`` per second)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        import zmq

        from odop.protocol import transport

        transport.use_run(Path(cfg["run"]))
        self.zmq, self.cfg, self.nodes = zmq, cfg, cfg["nodes"]
        self.agents = [transport.dealer(cfg["endpoint"], identity=f"agent:{n}".encode())
                       for n in self.nodes]
        self.relayed = cfg["topology"] == "agents"
        self.ranks = [] if self.relayed else [transport.dealer(cfg["endpoint"])
                                              for _ in self.nodes]
        self.poller = zmq.Poller()
        for sock in self.agents + self.ranks:
            self.poller.register(sock, zmq.POLLIN)
        self.unacked: dict[str, tuple[float, Any, dict[str, Any]]] = {}
        """id -> (sent, socket or the node index whose relay carries it, message)."""
        self.queued: dict[int, list[tuple[bytes, bytes]]] = {}
        """node index -> (rank route, encoded submission) waiting for its relay."""
        self.heard = [0.0] * len(self.nodes)
        self.exits: list[tuple[float, int, str]] = []
        self.latencies: list[tuple[float, float]] = []
        self.submitted: set[str] = set()
        self.started: set[str] = set()
        self.refused = self.errors = 0

    def send(self, sock: Any, msg: dict[str, Any], *, track: bool = False) -> None:
        """To a socket, or (an int) into that node's next relay, as its agent would."""
        from odop.protocol import encode

        if isinstance(sock, int):
            route = b"\x00" + msg["rank"].to_bytes(4, "big")
            self.queued.setdefault(sock, []).append((route, encode(msg)))
        else:
            try:
                sock.send(encode(msg), self.zmq.NOBLOCK)
            except self.zmq.Again:
                self.refused += 1
        if track:
            self.unacked[msg["id"]] = (time.monotonic(), sock, msg)

    def relay(self) -> None:
        """Each node's queued rank messages in one RELAY on its agent's connection."""
        from odop.protocol import MsgType, make

        for i, items in self.queued.items():
            self.send(self.agents[i], make(MsgType.RELAY, node=self.nodes[i],
                                           routes=[r for r, _ in items],
                                           msgs=[d for _, d in items]))
        self.queued.clear()

    def run(self, t_start: float, t_end: float, drain_s: float) -> dict[str, Any]:
        from odop.protocol import MsgType, make

        for i, node in enumerate(self.nodes):
            self.send(self.agents[i], make(MsgType.HELLO, node=node, cores=list(range(CORES)),
                                           pid=os.getpid(), sim_pids=[]))
        period = 1.0 / self.cfg["rate"] if self.cfg["rate"] > 0 else float("inf")
        samples = [(t_start + SAMPLE_S * i / len(self.nodes), i) for i in range(len(self.nodes))]
        pings = [(t_start + PING_S * i / len(self.nodes), i) for i in range(len(self.nodes))]
        next_submit, k, last_resend = t_start, 0, time.time()
        while time.time() < t_end + drain_s:
            now = time.time()
            while samples[0][0] <= now:
                due, i = heapq.heappop(samples)
                self.send(self.agents[i], make(MsgType.SAMPLE, node=self.nodes[i],
                                               sample=node_sample(self.nodes[i], now),
                                               running=[], sim_alive=True))
                heapq.heappush(samples, (due + SAMPLE_S, i))
            while pings[0][0] <= now:
                due, i = heapq.heappop(pings)
                if now - self.heard[i] >= PING_S:
                    self.send(self.agents[i], make(MsgType.HEARTBEAT))
                heapq.heappush(pings, (due + PING_S, i))
            while next_submit <= min(now, t_end):
                self._submit(k, now)
                k, next_submit = k + 1, next_submit + period
            while self.exits and self.exits[0][0] <= now:
                _, i, execution = heapq.heappop(self.exits)
                self._exited(i, execution)
            if now - last_resend >= RESEND_S:
                last_resend = now
                self._resend()
            self.relay()
            self._receive(TICK_S)
        return self.report()

    def _submit(self, k: int, now: float) -> None:
        from odop.protocol import MsgType, make, new_id

        execution = new_id()
        self.submitted.add(execution)
        node = k % len(self.nodes)
        self.send(node if self.relayed else self.ranks[node],
                  make(MsgType.SUBMIT, execution=execution, task="noop",
                       args={"t": now, "n": k}, rank=node), track=True)

    def _exited(self, i: int, execution: str) -> None:
        from odop.protocol import MsgType, make

        self.send(self.agents[i], make(
            MsgType.EXITED, execution=execution, exit_code=0, signal=None, reason="exited",
            cpu_s=0.01, max_rss_bytes=1 << 20, wall_s=self.cfg["task_s"], t=time.time(),
            energy_j=None, power_source=None, threads=1, output_cut_bytes=None), track=True)

    def _resend(self) -> None:
        now = time.monotonic()
        for sent, sock, msg in list(self.unacked.values()):
            if now - sent >= RESEND_S:
                self.send(sock, msg, track=True)

    def _receive(self, timeout_s: float) -> None:
        from odop.protocol import decode, validate

        index = {id(s): i for i, s in enumerate(self.agents)}
        for sock, _ in self.poller.poll(int(timeout_s * 1000)):
            while True:
                try:
                    data = sock.recv(self.zmq.NOBLOCK)
                except self.zmq.Again:
                    break
                mtype, msg = validate(decode(data))
                agent = index.get(id(sock))
                if agent is not None:
                    self.heard[agent] = time.time()
                if mtype.value == "deliver":  # the replies the agent hands its ranks
                    for inner in msg["msgs"]:
                        rtype, reply = validate(decode(inner))
                        self._handle(None, rtype.value, reply)
                else:
                    self._handle(agent, mtype.value, msg)

    def _handle(self, agent: int | None, mtype: str, msg: Any) -> None:
        from odop.protocol import MsgType, make

        if mtype == "ack":
            self.unacked.pop(msg["ref"], None)
        elif mtype == "error":
            self.errors += 1
            self.unacked.pop(msg.get("ref") or "", None)
        elif mtype == "start" and agent is not None:
            now = time.time()
            self.started.add(msg["execution"])
            self.latencies.append((msg["args"]["t"], now - msg["args"]["t"]))
            self.send(self.agents[agent], make(MsgType.STARTED, execution=msg["execution"],
                                               pid=os.getpid(), cores=msg["cores"], t=now))
            heapq.heappush(self.exits, (now + self.cfg["task_s"], agent, msg["execution"]))

    def report(self) -> dict[str, Any]:
        unacked = [m["type"] for _, _, m in self.unacked.values()]
        return {"latencies": self.latencies, "refused": self.refused, "errors": self.errors,
                "unacked_submits": unacked.count("submit"),
                "unacked_exits": unacked.count("exited"),
                "submitted": sorted(self.submitted), "started": sorted(self.started),
                "cpu_s": sum(psutil.Process().cpu_times()[:2])}


def driver_main(cfg_path: str) -> None:
    """A driver process: connect, say ready, wait for the start time, play, report."""
    cfg = json.loads(Path(cfg_path).read_text())
    driver = Driver(cfg)
    print("ready", flush=True)
    t_start = float(sys.stdin.readline())
    out = driver.run(t_start, t_start + cfg["warmup"] + cfg["seconds"], cfg["drain"])
    Path(cfg["out"]).write_text(json.dumps(out))


# -- the harness ---------------------------------------------------------------------
def _env(home: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, ODOP_HOME=str(home), PYTHONPATH=path)


def _scheduler(folder: Path) -> tuple[subprocess.Popen, Path, str]:
    run = folder / "home" / "runs" / "scale"
    proc = subprocess.Popen([sys.executable, "-m", "odop", "scheduler", "--run", str(run),
                             "--bind", "tcp://127.0.0.1:*"], env=_env(folder / "home"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    announced = run / "scheduler.endpoint"
    end = time.monotonic() + 60
    while not announced.exists():
        if time.monotonic() > end or proc.poll() is not None:
            raise RuntimeError("the scheduler did not announce its endpoint")
        time.sleep(0.05)
    return proc, run, announced.read_text().strip()


def _client(run: Path, endpoint: str, folder: Path) -> Any:
    """The harness's own client: declares the task, asks the scheduler's counts."""
    from odop.launch.client import Client
    from odop.protocol import MsgType, transport
    from odop.tasks.spec import parse_spec

    transport.use_run(run)
    (folder / "scaletask.py").write_text(TASK)
    client = Client(endpoint)
    spec = parse_spec({"name": "noop", "function": f"{folder}/scaletask.py:noop", "cpus": 1,
                       "time": "1s"}, source="scale")
    client.send(MsgType.DECLARE, track=True, tasks=[spec.to_dict()])
    if not client.flush(30.0):
        raise RuntimeError("the scheduler did not take the declaration")
    return client


def _status(client: Any) -> dict[str, Any]:
    from odop.protocol import MsgType

    reply = client.request(MsgType.STATUS, 30.0)
    if reply is None:
        raise RuntimeError("the scheduler did not answer a STATUS request")
    return reply["body"]


def _drivers(folder: Path, run: Path, endpoint: str, nodes: int,
             args: argparse.Namespace) -> list[tuple[subprocess.Popen, Path]]:
    out = []
    names = [f"n{i:04d}" for i in range(nodes)]
    count = min(args.drivers, nodes)
    for d in range(count):
        cfg = {"run": str(run), "endpoint": endpoint, "nodes": names[d::count],
               "topology": args.topology,
               "rate": args.rate / count, "task_s": args.task_s, "warmup": args.warmup,
               "seconds": args.seconds, "drain": args.drain, "out": str(folder / f"d{d}.json")}
        path = folder / f"d{d}.cfg.json"
        path.write_text(json.dumps(cfg))
        proc = subprocess.Popen([sys.executable, __file__, "--driver", str(path)],
                                env=_env(folder / "home"), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        out.append((proc, Path(cfg["out"])))
    for proc, _ in out:
        if proc.stdout is None or proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a driver did not start")
    return out


def _window(sched: psutil.Process, client: Any) -> tuple[float, int, float]:
    """(scheduler CPU seconds, run database transactions, now)."""
    cpu = sum(sched.cpu_times()[:2])
    return cpu, int(_status(client).get("transactions", 0)), time.monotonic()


def measure(nodes: int, args: argparse.Namespace) -> dict[str, Any]:
    """One row: a fresh scheduler and ``nodes`` simulated nodes."""
    with tempfile.TemporaryDirectory(prefix="odop-scale-") as tmp:
        folder = Path(tmp)
        sched, run, endpoint = _scheduler(folder)
        try:
            client = _client(run, endpoint, folder)
            drivers = _drivers(folder, run, endpoint, nodes, args)
            t_start = time.time() + 0.5
            for proc, _ in drivers:
                assert proc.stdin is not None
                proc.stdin.write(f"{t_start}\n")
                proc.stdin.flush()
            time.sleep(max(0.0, t_start + args.warmup - time.time()))
            ps = psutil.Process(sched.pid)
            cpu0, tx0, m0 = _window(ps, client)
            driver_cpu0 = _driver_cpu(drivers)
            time.sleep(max(0.0, t_start + args.warmup + args.seconds - time.time()))
            cpu1, tx1, m1 = _window(ps, client)
            driver_cpu = _driver_cpu(drivers) - driver_cpu0
            rss = ps.memory_info().rss
            conns = len([c for c in ps.net_connections("tcp") if c.status == "ESTABLISHED"])
            for proc, _ in drivers:
                proc.wait(args.drain + 120)
            invalid = int(_status(client).get("invalid", 0))
            client.close()
        finally:
            sched.kill()
            sched.wait()
        outs = [json.loads(path.read_text()) for _, path in drivers]
    return _row(nodes, args, outs, cpu1 - cpu0, m1 - m0, tx1 - tx0, rss, invalid, conns,
                driver_cpu, t_start + args.warmup)


def _driver_cpu(drivers: list[tuple[subprocess.Popen, Path]]) -> float:
    total = 0.0
    for proc, _ in drivers:
        with contextlib.suppress(psutil.Error):
            total += sum(psutil.Process(proc.pid).cpu_times()[:2])
    return total


def _row(nodes: int, args: argparse.Namespace, outs: list[dict[str, Any]], cpu_s: float,
         wall_s: float, tx: int, rss: int, invalid: int, conns: int, driver_cpu_s: float,
         t_window: float) -> dict[str, Any]:
    lat = np.array([dt for o in outs for t, dt in o["latencies"] if t >= t_window]) * 1000
    submitted = {e for o in outs for e in o["submitted"]}
    started = {e for o in outs for e in o["started"]}
    unacked = sum(o["unacked_submits"] + o["unacked_exits"] for o in outs)
    not_started = len(submitted - started) - sum(o["unacked_submits"] for o in outs)
    return {
        "nodes": nodes, "topology": args.topology, "rate_per_s": args.rate,
        "seconds": round(wall_s, 1),
        "scheduler_cpu_pct": round(100 * cpu_s / wall_s, 1),
        "submit_to_start_ms_p50": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
        "submit_to_start_ms_p99": round(float(np.percentile(lat, 99)), 2) if lat.size else None,
        "starts_measured": int(lat.size),
        "rss_mib": round(rss / 2**20, 1),
        "sqlite_tx_per_s": round(tx / wall_s, 1),
        "dropped": unacked + sum(o["refused"] for o in outs) + max(0, not_started),
        "invalid": invalid + sum(o["errors"] for o in outs),
        "scheduler_connections": conns,
        "drivers_cpu_pct": round(100 * driver_cpu_s / wall_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--nodes", default="16,64,256,1000", help="comma-separated node counts")
    p.add_argument("--rate", type=float, default=100.0, help="submissions/s over the job")
    p.add_argument("--seconds", type=float, default=20.0, help="measured window (s)")
    p.add_argument("--warmup", type=float, default=5.0, help="time before the window (s)")
    p.add_argument("--drain", type=float, default=5.0, help="time for the last acks (s)")
    p.add_argument("--drivers", type=int, default=2, help="driver processes")
    p.add_argument("--task-s", type=float, default=0.5, help="fake task duration (s)")
    p.add_argument("--topology", choices=sorted(TOPOLOGIES), default="agents",
                   help="ranks through their node's agent (now), or each its own connection")
    p.add_argument("--driver", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.driver:
        driver_main(args.driver)
        return 0
    try:
        counts = [int(n) for n in args.nodes.split(",")]
    except ValueError:
        p.error(f"--nodes {args.nodes!r}: expected comma-separated integers, e.g. 16,64")
    if not counts or min(counts) < 1 or args.drivers < 1 or args.seconds <= 0:
        p.error("--nodes, --drivers and --seconds must be positive")
    rows = []
    for n in counts:
        rows.append(measure(n, args))
        if not args.json:
            print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()
    result = {"rows": rows, "cpus": os.cpu_count(), "loadavg_1m": round(load[0], 2),
              "topology": f"{args.topology}: {TOPOLOGIES[args.topology]}"}
    print(json.dumps(result) if args.json else f"load average (1 min): {load[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
