"""``odop run [--tasks DIR] [--config FILE] -- mpiexec -n N ./sim ...``: wrapped mode.

Runs an unchanged program with odop around it: checks the spec files of ``--tasks`` (a bad
one stops here, leaving no run behind), creates the run, starts the scheduler and this
node's agent (following every descendant of the launched command as a simulation rank),
launches the command at once while the declarations travel (the triggers find whatever it
writes meanwhile), forwards SIGINT/SIGTERM to it, and when it exits drains the queue.

At the end it prints one line (run, the account of every submission, where to look), or
with ``--json`` one JSON object on stdout, and exits with:

- the command's own exit code when that is not 0;
- else 3 (``EXIT_TASKS_FAILED``) when a task failed;
- else 4 (``EXIT_INCOMPLETE``) when a submission was not run to its end: left queued,
  cancelled by odop, kept in a journal, or unaccounted;
- else 0; 130 when stopped by a second Ctrl-C during the drain.

The command sees ``ODOP_RUN`` and ``ODOP_SCHEDULER``: if it calls ``odop.start()`` itself it
joins this run.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from odop.config import Config, load_config
from odop.errors import OdopError
from odop.launch.account import Account, take
from odop.tasks.spec import TaskSpec

log = logging.getLogger("odop.run")
EXIT_TASKS_FAILED = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130
REAP_S = 1.0
"""After the drain, how long the scheduler and agent have to exit before SIGTERM (s): they
are told to by then (an agent that started too late to hear the scheduler's shutdown
would otherwise hold odop run for the whole wait)."""
INTERRUPT_WAIT_S = 10.0
"""Longest wait, after a second Ctrl-C, for the scheduler to stop the tasks (seconds)."""


def add_parser(sub: Any) -> None:
    p = sub.add_parser("run", help="run a program (e.g. mpiexec ...) with odop around it")
    p.add_argument("--run", dest="run_name", help="run name (default: a new timestamped one)")
    p.add_argument("--tasks", action="append", default=[], help="task spec folder (repeatable)")
    p.add_argument("--config", help="odop config file (TOML)")
    p.add_argument("--bind", help="scheduler endpoint, e.g. tcp://*:* for agents on other nodes")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object on stdout at the end")
    p.add_argument("program", nargs=argparse.REMAINDER, help="-- the command to run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not command:
        raise OdopError("odop run needs a command after '--', e.g. odop run -- mpiexec -n 2 ./sim")
    config = load_config(args.config)
    specs = load_specs([*args.tasks, *config.task_dirs], config)  # before any run exists
    wrapper = Wrapper(config, args.run_name, args.bind)
    try:
        wrapper.declare(specs)
        code = wrapper.launch(command)
        drained = wrapper.drain()
    finally:
        wrapper.close()
    account = take(wrapper.paths)
    status = exit_status(code, account, interrupted=wrapper.interrupted)
    drained = drained and not (account.queued or account.running)
    summary = {"run": wrapper.paths.name, "run_dir": str(wrapper.paths.root),
               "exit_code": code, "status": status, "drained": drained,
               "done": account.done, "failed": account.failed, "account": account.to_dict()}
    if args.json:
        from odop.cli.common import print_json

        print_json(summary)
    print_summary(wrapper.paths.name, code, status, account)
    return status


def load_specs(folders: list[str], config: Config) -> dict[str, TaskSpec]:
    """Every task of the spec folders, checked (a bad spec raises, naming the file)."""
    from odop.tasks.loader import load_task_folder

    specs: dict[str, TaskSpec] = {}
    for folder in folders:
        specs.update(load_task_folder(folder, executable_dirs=config.executable_dirs))
    return specs


def exit_status(code: int, account: Account, *, interrupted: bool = False) -> int:
    """What ``odop run`` exits with (see the module's docstring)."""
    if interrupted:
        return EXIT_INTERRUPTED
    if code != 0:
        return code
    if account.failed:
        return EXIT_TASKS_FAILED
    return EXIT_INCOMPLETE if account.incomplete else 0


def print_summary(run: str, code: int, status: int, account: Account) -> None:
    """The closing line on stderr (stdout is the program's and --json's)."""
    verdict = "complete" if status == 0 else "INCOMPLETE" if account.incomplete else "see below"
    print(f"odop: run {run}: command exited {code}; tasks: {account.line()} ({verdict}); "
          f"details: odop status {run}", file=sys.stderr)
    for state in ("failed", "skipped", "cancelled"):
        for why, n in sorted(account.reasons.get(state, {}).items()):
            print(f"odop:   {n} {state}: {why}", file=sys.stderr)


class Wrapper:
    """The run, its scheduler and agent, and the wrapped command."""

    def __init__(self, config: Config, run_name: str | None, bind: str | None) -> None:
        from odop.launch import discover, startup
        from odop.launch.client import Client
        from odop.procs import node_name
        from odop.protocol import transport

        self.config, self.node = config, node_name()
        self.paths, external = startup.open_run(run_name, config, self.node, wrapped=True)
        transport.use_run(self.paths.root)
        self.scheduler = None if external else startup.start_scheduler(self.paths, self.node,
                                                                       bind)
        self.endpoint = discover.scheduler_endpoint(self.paths)
        self.client = Client(self.endpoint, rank=None)
        self.agent: Any = None
        self.proc: subprocess.Popen | None = None
        self.interrupted = False

    def declare(self, specs: dict[str, TaskSpec]) -> None:
        """Send the declarations; they are resent until the scheduler takes them, while
        the command already runs (what it writes meanwhile, the triggers find)."""
        from odop.protocol import MsgType
        from odop.tasks.triggers import note_start

        note_start(self.paths.db, specs.values())  # where the logs end, before the command runs
        self.client.send(MsgType.DECLARE, track=True, tasks=[s.to_dict() for s in specs.values()])

    def launch(self, command: list[str]) -> int:
        """Run ``command`` to its end (signals forwarded); returns its exit code."""
        from odop.launch import discover
        from odop.launch.daemons import spawn_daemon
        from odop.launch.failopen import Keeper
        from odop.launch.startup import diagnosis

        env = dict(os.environ, ODOP_RUN=str(self.paths.root), ODOP_SCHEDULER=self.endpoint)
        try:
            self.proc = subprocess.Popen(command, env=env, start_new_session=True)
        except OSError as exc:
            raise OdopError(f"cannot start {command[0]!r}: {exc}") from exc
        args = ["--node", self.node, "--sim-root", str(self.proc.pid),
                "--interval", str(self.config.sample_interval_s)]
        if discover.live_agent(self.paths, self.node) is None:  # else started by hand
            self.agent = Keeper("agent",
                                lambda: spawn_daemon("agent", args, self.paths, self.node),
                                diagnosis(self.paths, "agent"))
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

    def drain(self) -> bool:
        """Tell the scheduler the simulation ended and wait for the queue to drain. The
        first Ctrl-C says what it waits for; a second stops the tasks, leaving the rest
        queued (in the account). True when the queue drained."""
        warned = False
        while True:
            try:
                return self._drain()
            except KeyboardInterrupt:
                if warned:
                    self._interrupt()
                    return False
                warned = True
                print(f"odop: draining {self._open_work()} task(s); Ctrl-C again to stop "
                      "now (what is left stays queued)", file=sys.stderr, flush=True)

    def _drain(self) -> bool:
        from odop.launch.failopen import Watchdog
        from odop.protocol import MsgType

        timeout = self.config.drain_timeout_s
        end = None if timeout is None else time.monotonic() + timeout
        self.watchdog = Watchdog(self.client, self.scheduler, self.config.scheduler_silence_s)
        while True:
            left = None if end is None else max(0.0, end - time.monotonic())
            reply = self.client.request(MsgType.SIM_END, left, rank=None,
                                        alive=self._tend)
            if reply is not None:
                return True
            if (self.scheduler is None or (end is not None and time.monotonic() >= end)
                    or not self.scheduler.check(force=True)):
                return False

    def _open_work(self) -> int:
        """Executions not ended yet (queued, placed, running, paused)."""
        from odop.store.executions import RunStore
        from odop.store.states import ExecState

        store = RunStore(self.paths.db, readonly=True)
        try:
            return sum(n for state, n in store.counts().items()
                       if not ExecState(state).terminal)
        finally:
            store.close()

    def _interrupt(self) -> None:
        """Second Ctrl-C: the scheduler stops the running tasks, requeues them, and exits
        (SIGINT); the queue stays in the run database for ``odop export`` or a later run."""
        self.interrupted = True
        proc = self.scheduler.proc if self.scheduler is not None else None
        if proc is None or proc.poll() is not None:
            return
        print("odop: stopping the tasks; the rest stays queued", file=sys.stderr, flush=True)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(INTERRUPT_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("odop: the scheduler did not stop in %.0f s", INTERRUPT_WAIT_S)

    def _tend(self) -> bool:
        """Restart the agent if it died (the drain needs it); True while the scheduler
        lives (the drain loop restarts it, then asks again)."""
        if self.agent is not None:
            self.agent.check()
        return self._scheduler_alive() and self.watchdog()

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
        _reap([p for p in procs if p is not None], grace_s=REAP_S)
        self.client.close()
        transport.use_run(None)
