"""``odop run [--tasks DIR] [--config FILE] -- mpiexec -n N ./sim ...``: wrapped mode.

Runs an unchanged program with odop around it: creates the run, starts the scheduler and
this node's agent (following every descendant of the launched command as a simulation
rank), declares the spec files of ``--tasks`` (their file/line/periodic triggers are run
by the scheduler), launches the command, forwards SIGINT/SIGTERM to it, and when it exits
drains the queue and exits with the command's exit code. The command sees ``ODOP_RUN`` and
``ODOP_SCHEDULER``: if it calls ``odop.start()`` itself it joins this run.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import time
from typing import Any

from odop.config import Config, load_config
from odop.errors import OdopError

log = logging.getLogger("odop.run")
DECLARE_WAIT_S = 30.0
"""Longest wait for the scheduler to acknowledge the task declarations (seconds)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a program (e.g. mpiexec ...) with odop around it")
    p.add_argument("--run", dest="run_name", help="run name (default: a new timestamped one)")
    p.add_argument("--tasks", action="append", default=[], help="task spec folder (repeatable)")
    p.add_argument("--config", help="odop config file (TOML)")
    p.add_argument("--bind", help="scheduler endpoint, e.g. tcp://*:* for agents on other nodes")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stderr at the end")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- the command to run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise OdopError("odop run needs a command after '--', e.g. odop run -- mpiexec -n 2 ./sim")
    config = load_config(args.config)
    wrapper = Wrapper(config, args.run_name, args.bind)
    try:
        wrapper.declare([*args.tasks, *config.task_dirs])
        code = wrapper.launch(command)
        summary = wrapper.drain()
    finally:
        wrapper.close()
    if args.json:
        import json
        import sys

        print(json.dumps({"run": str(wrapper.paths.root), "exit_code": code, **summary}),
              file=sys.stderr)
    return code


class Wrapper:
    """The run, its scheduler and agent, and the wrapped command."""

    def __init__(self, config: Config, run_name: str | None, bind: str | None) -> None:
        from odop.launch import discover, startup
        from odop.launch.client import Client
        from odop.launch.embedded import node_name
        from odop.protocol import transport

        self.config, self.node = config, node_name()
        self.paths, external = startup.open_run(run_name, config, self.node)
        transport.use_run(self.paths.root)
        self.scheduler = None if external else startup.start_scheduler(self.paths, self.node,
                                                                       bind)
        self.endpoint = discover.scheduler_endpoint(self.paths)
        self.client = Client(self.endpoint, rank=None)
        self.agent: Any = None
        self.proc: subprocess.Popen | None = None

    def declare(self, folders: list[str]) -> None:
        from odop.protocol import MsgType
        from odop.tasks.loader import load_task_folder

        specs: dict[str, Any] = {}
        for folder in folders:
            specs.update(load_task_folder(folder, executable_dirs=self.config.executable_dirs))
        self.client.send(MsgType.DECLARE, track=True, tasks=[s.to_dict() for s in specs.values()])
        if not self.client.flush(DECLARE_WAIT_S):
            log.warning("odop run: the scheduler did not confirm the task declarations")

    def launch(self, command: list[str]) -> int:
        """Run ``command`` to its end (signals forwarded); returns its exit code."""
        from odop.launch import discover
        from odop.launch.daemons import spawn_daemon
        from odop.launch.failopen import Keeper

        env = dict(os.environ, ODOP_RUN=str(self.paths.root), ODOP_SCHEDULER=self.endpoint)
        try:
            self.proc = subprocess.Popen(command, env=env, start_new_session=True)
        except OSError as exc:
            raise OdopError(f"cannot start {command[0]!r}: {exc}") from exc
        args = ["--node", self.node, "--sim-root", str(self.proc.pid),
                "--interval", str(self.config.sample_interval_s)]
        if discover.live_agent(self.paths, self.node) is None:  # else started by hand
            self.agent = Keeper("agent",
                                lambda: spawn_daemon("agent", args, self.paths, self.node))
        forward = {s: signal.signal(s, self._forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while (code := self.proc.poll()) is None:
                for keeper in (self.scheduler, self.agent):
                    if keeper is not None:
                        keeper.check()
                self.client.pump(0.2)
        finally:
            for sig, handler in forward.items():
                signal.signal(sig, handler)
        return code if code >= 0 else 128 - code

    def _forward(self, signum: int, _frame: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def drain(self) -> dict[str, Any]:
        """Tell the scheduler the simulation ended and wait for the queue to drain."""
        from odop.protocol import MsgType

        timeout = self.config.drain_timeout_s
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if end is None else max(0.0, end - time.monotonic())
            reply = self.client.request(MsgType.SIM_END, left, rank=None,
                                        alive=self._scheduler_alive)
            if reply is not None:
                return {"drained": True, "done": reply["done"], "failed": reply["failed"]}
            if (self.scheduler is None or (end is not None and time.monotonic() >= end)
                    or not self.scheduler.check(force=True)):
                return {"drained": False, "done": None, "failed": None}

    def _scheduler_alive(self) -> bool:
        from odop.launch import discover

        if self.scheduler is not None:
            return self.scheduler.alive()
        return discover.live_scheduler(self.paths, self.node) is not None

    def close(self) -> None:
        from odop.launch.embedded import _reap
        from odop.protocol import transport

        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
        procs = [k.proc for k in (self.scheduler, self.agent) if k is not None and k.proc]
        _reap([p for p in procs if p is not None], grace_s=3.0)
        self.client.close()
        transport.use_run(None)
