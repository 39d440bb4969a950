"""The engine: starts, pauses, re-pins, stops and reaps a node's tasks. No sockets here."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odop.engine.process import TaskProcess
from odop.engine.spawn import clean_env, spawn, thread_env
from odop.engine.worker import EXIT_MEMORY, EXIT_SETUP, encode_order


@dataclass(frozen=True)
class Exit:
    """How a task ended and what it used (seconds, bytes)."""

    execution: str
    exit_code: int | None
    signal: int | None
    reason: str
    cpu_s: float
    max_rss_bytes: int
    wall_s: float


class Engine:
    """Task processes of one node, each in its own session, pinned to its grant."""

    def __init__(self, run_dir: Path, *, grace_s: float = 5.0, cwd: str | None = None,
                 base_env: Mapping[str, str] | None = None) -> None:
        self.run_dir = run_dir
        self.grace_s = grace_s
        self.cwd = cwd or os.getcwd()
        self.base_env = clean_env(base_env if base_env is not None else os.environ)
        self.tasks: dict[str, TaskProcess] = {}
        self._by_pid: dict[int, TaskProcess] = {}

    def start(self, execution: str, spec: Mapping[str, Any], args: Mapping[str, Any],
              cores: list[int]) -> TaskProcess:
        """Start one execution of ``spec`` on ``cores``; raises SpawnError if it cannot."""
        folder = self.run_dir / "tasks" / execution
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        env = self._env(execution, spec, cores, folder)
        order = {"kind": spec["kind"], "target": spec.get("target", ""),
                 "argv": fill_argv(spec.get("argv") or [spec.get("target", "")], args),
                 "args": dict(args), "memory_max": spec.get("memory_max"), "parent": os.getpid()}
        env["ODOP_TASK"] = encode_order(order)
        pid = spawn([sys.executable, "-m", "odop.engine.worker"], cores=cores, env=env,
                    cwd=self.cwd, stdout=folder / "stdout", stderr=folder / "stderr")
        limit = spec.get("time_limit_s")
        proc = TaskProcess(execution, pid, list(cores),
                           deadline=time.monotonic() + limit if limit else None)
        self.tasks[execution] = self._by_pid[pid] = proc
        return proc

    def _env(self, execution: str, spec: Mapping[str, Any], cores: list[int],
             folder: Path) -> dict[str, str]:
        threads = spec.get("threads_max") or len(cores)
        env = {**self.base_env, **thread_env(min(threads, len(cores)))}
        env.update(ODOP_EXECUTION=execution, ODOP_RUN_DIR=str(self.run_dir),
                   ODOP_TASK_DIR=str(folder), ODOP_CORES=",".join(map(str, cores)))
        if spec["kind"] == "python":
            env["MPI4PY_RC_INITIALIZE"] = "false"
        return env

    def reap(self) -> list[Exit]:
        """Collect every task that has exited, with its rusage."""
        exits = []
        while self._by_pid:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            proc = self._by_pid.pop(pid, None)
            if proc is None:
                continue
            self.tasks.pop(proc.execution, None)
            proc.signal(signal.SIGKILL)  # the group's stragglers go with their leader
            exits.append(_exit_record(proc, status, usage))
        return exits

    def enforce(self, now: float | None = None) -> None:
        """Kill tasks past their time limit, and stopped tasks past their grace period."""
        now = time.monotonic() if now is None else now
        for proc in list(self.tasks.values()):
            if proc.deadline is not None and now > proc.deadline:
                proc.kill("time limit exceeded")
            elif proc.stopping_since is not None and now - proc.stopping_since > self.grace_s:
                proc.kill(proc.reason or "stopped")

    def stop_all(self, reason: str, wait_s: float | None = None) -> list[Exit]:
        """TERM every task, KILL what remains after the grace period, and reap them all."""
        for proc in self.tasks.values():
            proc.stop(reason)
        end = time.monotonic() + (self.grace_s if wait_s is None else wait_s)
        exits = self.reap()
        while self.tasks and time.monotonic() < end:
            time.sleep(0.02)
            exits += self.reap()
        for proc in list(self.tasks.values()):
            proc.kill(reason)
        while self.tasks:
            time.sleep(0.01)
            exits += self.reap()
        return exits


def fill_argv(template: list[str], args: Mapping[str, Any]) -> list[str]:
    """Fill ``{name}`` placeholders of an argv template from the submission's arguments."""
    return [part.format_map(args) for part in template]


def _exit_record(proc: TaskProcess, status: int, usage: Any) -> Exit:
    code = os.waitstatus_to_exitcode(status)
    sig = -code if code < 0 else None
    reason = proc.reason or _reason(code)
    return Exit(proc.execution, code if code >= 0 else None, sig, reason,
                cpu_s=usage.ru_utime + usage.ru_stime, max_rss_bytes=usage.ru_maxrss * 1024,
                wall_s=time.monotonic() - proc.started)


def _reason(code: int) -> str:
    if code == 0:
        return "ok"
    if code == EXIT_MEMORY:
        return "out of memory (exceeded its memory bound)"
    if code == EXIT_SETUP:
        return "could not load the task (see its stderr)"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"
