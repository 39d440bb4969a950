"""The engine: starts, pauses, re-pins, stops and reaps a node's tasks. No sockets here.

Python tasks are forked by the fork server (odop.engine.forkserver) when it is up, and
otherwise start a fresh interpreter (``python -m odop.engine.worker``); executables and
``mpi`` tasks are always started with ``posix_spawn`` (odop.engine.spawn). Either way the
task is a session of its own whose leader's pid is the ``TaskProcess.pid``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from odop.engine import cgroup as _cgroup
from odop.engine.cgroup import CgroupTree
from odop.engine.exits import Exit, exit_record, memory_reason
from odop.engine.forkclient import ForkClient, ForkServerError
from odop.engine.memwatch import MemoryWatch
from odop.engine.mpi import launch_env, mpi_argv, threads_per_rank
from odop.engine.output import CHECK_S, OutputCap
from odop.engine.process import TaskProcess, group_pids, threads_of
from odop.engine.scripts import ScriptBook, script_argv
from odop.engine.spawn import clean_env, spawn, thread_env
from odop.engine.worker import encode_order
from odop.paths import RunPaths

__all__ = ["Engine", "Exit", "command_line"]
LOST_AFTER_S = 5.0
"""Seconds after SIGKILL before stop_all records a forked task that is gone but was never
reported as lost (a task started by the engine itself is always reaped)."""
RESTARTS_PER_MINUTE = 5
"""Fork-server restarts allowed per minute before the engine stays on the fresh path."""
MEMORY_BOUNDS = ("auto", "sample", "rlimit")
"""How a task's memory maximum is enforced: ``auto`` (a memory cgroup where one can be
written, else sampling), ``sample`` (sampling only), ``rlimit`` (RLIMIT_DATA, last resort)."""
OUTPUT_MAX_BYTES = 10 * 2**20
"""Bytes of a task's stdout, and of its stderr, kept by default: half head, half tail."""


def rlimit_for(memory_max: int) -> int:
    """The RLIMIT_DATA (bytes) of a task with this maximum under ``memory_bound = "rlimit"``:
    twice the maximum plus 1 GiB, for the address space that runtimes reserve but never
    touch (interpreter arenas, thread stacks, BLAS buffers), which the limit counts."""
    return 2 * int(memory_max) + 2**30


class Engine:
    """Task processes of one node, each in its own session, pinned to its grant.

    ``fork_server``: fork Python tasks from a warm helper (default: yes unless the
    environment says ``ODOP_FORK_SERVER=0``); ``cgroups``: the memory cgroup tree (default:
    detected, v2 then v1; None: none, so memory is sampled); ``memory_bound``: one of
    MEMORY_BOUNDS; ``output_max_bytes``: bytes kept of each task's stdout and of its
    stderr (odop.engine.output); ``scripts``: what Python-script tasks taught it (their
    imports, whether they survive a fork: odop.engine.scripts; default: in memory)."""

    def __init__(self, run_dir: Path, *, grace_s: float = 5.0, cwd: str | None = None,
                 base_env: Mapping[str, str] | None = None, fork_server: bool | None = None,
                 cgroups: CgroupTree | None | bool = True, memory_bound: str = "auto",
                 output_max_bytes: int = OUTPUT_MAX_BYTES,
                 scripts: ScriptBook | None = None) -> None:
        if memory_bound not in MEMORY_BOUNDS:
            raise ValueError(f"memory_bound {memory_bound!r} is unknown; allowed: "
                             f"{', '.join(MEMORY_BOUNDS)}")
        self.run_dir = run_dir
        self.paths = RunPaths(run_dir)
        self.grace_s = grace_s
        self.cwd = cwd or os.getcwd()
        self.base_env = clean_env(base_env if base_env is not None else os.environ)
        self.tasks: dict[str, TaskProcess] = {}
        self._by_pid: dict[int, TaskProcess] = {}  # started by posix_spawn
        self._served: dict[int, TaskProcess] = {}  # forked by the fork server
        self.memory_bound = memory_bound
        if memory_bound != "auto":
            cgroups = None
        self.cgroups = _cgroup.detect() if cgroups is True else (cgroups or None)
        self._bounded: set[str] = set()  # executions with a cgroup of their own
        self.memwatch = MemoryWatch()
        self.output_max_bytes = int(output_max_bytes)
        self._outputs: dict[str, OutputCap] = {}
        self._next_output_check = 0.0
        self.scripts = scripts if scripts is not None else ScriptBook()
        self._script_runs: dict[str, tuple[str, bool]] = {}  # execution -> (task, forked)
        if fork_server is None:
            fork_server = os.environ.get("ODOP_FORK_SERVER", "1") != "0"
        self._restarts: list[float] = []
        self.server: ForkClient | None = None
        if fork_server:
            self._start_server()

    # -- fork server ------------------------------------------------------------------
    def fileno(self) -> int | None:
        """A descriptor that becomes readable when the fork server reports (poll it, then
        call reap); None while there is no fork server."""
        return self.server.fileno() if self.server is not None else None

    def warm(self, targets: list[str]) -> None:
        """Have the fork server probe these Python targets' modules before their first
        start (at idle priority), so the first tasks fork warm too."""
        if self.server is not None and self.server.ready_now():
            for target in targets:
                self.server.warm(target)

    def warmed_up(self) -> bool:
        """True once start-up work is over: the fork server is ready, gone, or not used."""
        return self.server is None or self.server.dead or self.server.ready_now()

    def _start_server(self) -> None:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 60.0] + [now]
        if len(self._restarts) > RESTARTS_PER_MINUTE:
            self.server = None  # crashing in a loop: stay on the fresh-interpreter path
            return
        self.server = ForkClient(self.base_env, self.cwd, self.run_dir / "logs" / "forkserver.log")

    def _server_died(self) -> list[Exit]:
        """Record the tasks lost with a dead fork server (they die with it), start a new one."""
        assert self.server is not None
        exits = self._served_exits()  # reports it sent before dying
        for proc in list(self._served.values()):
            proc.signal(signal.SIGKILL)
            self._script_runs.pop(proc.execution, None)  # not the script's failure
            cut = self._forget(proc)[1]
            exits.append(Exit(proc.execution, None, signal.SIGKILL,
                              proc.reason or "lost: the fork server died", 0.0, 0,
                              time.monotonic() - proc.started, cut))
        self._served.clear()
        self.server.close()
        self._start_server()
        return exits

    # -- starting -----------------------------------------------------------------------
    def start(self, execution: str, spec: Mapping[str, Any], args: Mapping[str, Any],
              cores: list[int], gpus: Sequence[int] = (),
              hosts: Sequence[Mapping[str, Any]] = (), attempt: int = 0) -> TaskProcess:
        """Start one execution of ``spec`` on ``cores`` (and ``gpus``, NVML indices; an mpi
        task spanning nodes on ``hosts``, each ``{"host", "cores"}``, this node first);
        ``attempt``: 0 for its first run. Raises SpawnError if it cannot."""
        folder = self.paths.task_dir(execution)
        env = {**self._env(execution, spec, cores, folder, attempt), **gpu_env(gpus)}
        memory_max = spec.get("memory_max")
        cgroup = self._cgroup(execution, memory_max)
        rlimit = rlimit_for(memory_max) if memory_max and self.memory_bound == "rlimit" else None
        bounds = {"cgroup": cgroup, "rlimit": rlimit}
        script = self._script(spec, args, env)
        asked = (spec["kind"] == "python" or bool((script or {}).get("script"))) and \
            self._ask_fork(execution, spec, args, cores, env, folder,
                           {**bounds, **(script or {})})
        output = self._output(execution, folder, asked)
        try:
            pid = self._forked(execution) if asked else None
            served = pid is not None
            if script is not None:
                self._script_runs[execution] = (script["task"], served)
            if pid is None:
                pid = self._spawn(execution, spec, args, cores, env, folder, bounds, hosts)
        except BaseException:
            output.finish()
            self._drop_cgroup(execution)
            raise
        limit = spec.get("time_limit_s")
        proc = TaskProcess(execution, pid, list(cores),
                           deadline=time.monotonic() + limit if limit else None,
                           memory_max=memory_max, bound=self._bound(memory_max, cgroup, rlimit))
        if memory_max and not (cgroup or rlimit):
            self.memwatch.add(execution, pid, memory_max)
        self.tasks[execution] = proc
        (self._served if served else self._by_pid)[pid] = proc
        self._outputs[execution] = output
        return proc

    def _bound(self, memory_max: int | None, cgroup: str | None, rlimit: int | None) -> str:
        """How a task's memory maximum is enforced, in words ("" without one): its cgroup,
        its rlimit, or else sampling."""
        if not memory_max:
            return ""
        if cgroup and self.cgroups is not None:  # (the second test: for the type checker)
            return self.cgroups.how
        if rlimit:
            return (f"RLIMIT_DATA of {rlimit / 1e6:.1f} MB per process: twice the max "
                    "plus 1 GiB")
        return self.memwatch.how

    def _script(self, spec: Mapping[str, Any], args: Mapping[str, Any],
                env: Mapping[str, str]) -> dict[str, Any] | None:
        """A Python-script task's fork order (task, script, argv, learned imports; an empty
        one when its runs start fresh), or None when it is not one (odop.engine.scripts)."""
        if spec["kind"] != "executable":
            return None
        try:
            argv = command_line(spec, args)
        except (KeyError, IndexError, ValueError):
            return None  # a placeholder without its argument: the start fails, cleanly
        found = script_argv(argv, env.get("PATH"))
        if found is None:
            return None
        task = str(spec.get("name", ""))
        if not self.scripts.forked(task):
            return {"task": task}
        return {"task": task, "script": found[0], "argv": found[1],
                "imports": self.scripts.entry(task)[0]}

    def _learn(self, done: Exit, imports: list[str] | None = None) -> Exit:
        """Tell the script book how a script task's run ended (a no-op for other tasks)."""
        run = self._script_runs.pop(done.execution, None)
        if run is not None:
            self.scripts.ended(run[0], run[1], done.exit_code, imports)
        return done

    def _ask_fork(self, execution: str, spec: Mapping[str, Any], args: Mapping[str, Any],
                  cores: list[int], env: dict[str, str], folder: str,
                  bounds: Mapping[str, Any]) -> bool:
        """Ask the fork server for the task (the child makes its folder if need be);
        False when it cannot be asked."""
        if self.server is None:
            return False
        order = {"execution": execution, "target": spec.get("target", ""), "args": dict(args),
                 "cores": list(cores), "env": env, "cwd": self.cwd,
                 "stdout": os.path.join(folder, "stdout"),
                 "stderr": os.path.join(folder, "stderr"), **bounds,
                 "drain": spec.get("drain")}
        try:
            self.server.send_start(order)
        except ForkServerError:
            return False  # not ready yet, or gone (reap() restarts it): the fresh path
        return True

    def _output(self, execution: str, folder: str, asked: bool) -> OutputCap:
        """The task's folder and output files, made while the fork server forks; on a
        failure the child asked for is ended and the cgroup dropped."""
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            return OutputCap(folder, self.output_max_bytes)
        except BaseException:
            if asked:
                self._abandon(execution)
            self._drop_cgroup(execution)
            raise

    def _abandon(self, execution: str) -> None:
        """A start that failed after the fork server was asked for it: end that child."""
        pid = self._forked(execution)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def _forked(self, execution: str) -> int | None:
        """The pid of a task asked of the fork server; None when it refused (fresh path)."""
        assert self.server is not None
        try:
            return self.server.started(execution)
        except ForkServerError:
            return None

    def _spawn(self, execution: str, spec: Mapping[str, Any], args: Mapping[str, Any],
               cores: list[int], env: dict[str, str], folder: str, bounds: Mapping[str, Any],
               hosts: Sequence[Mapping[str, Any]] = ()) -> int:
        argv = command_line(spec, args)
        if spec["kind"] == "mpi":
            argv = mpi_argv(spec, argv, cores, env, hosts)
            env = {**env, **launch_env(env, hosts)}
        order = {"kind": spec["kind"], "target": spec.get("target", ""), "argv": argv,
                 "args": dict(args), **bounds, "parent": os.getpid(),
                 "drain": spec.get("drain")}
        env = {**env, "ODOP_TASK": encode_order(order)}
        return spawn([sys.executable, "-m", "odop.engine.worker"], cores=cores, env=env,
                     cwd=self.cwd, stdout=os.path.join(folder, "stdout"),
                     stderr=os.path.join(folder, "stderr"))

    def _cgroup(self, execution: str, memory_max: int | None) -> str | None:
        if not memory_max or self.cgroups is None:
            return None
        try:
            path = self.cgroups.create(execution, memory_max)
        except OSError:
            return None  # the agent's sampling (memwatch) bounds it instead
        self._bounded.add(execution)
        return path

    def _env(self, execution: str, spec: Mapping[str, Any], cores: list[int],
             folder: str, attempt: int = 0) -> dict[str, str]:
        if spec["kind"] == "mpi":
            threads = threads_per_rank(spec, cores)
        else:
            threads = min(spec.get("threads_max") or len(cores), len(cores))
        env = {**self.base_env, **thread_env(threads)}
        env.update(ODOP_EXECUTION_ID=execution, ODOP_ATTEMPT=str(int(attempt)),
                   ODOP_EXECUTION=execution, ODOP_RUN_DIR=str(self.run_dir),
                   ODOP_TASK_DIR=folder, ODOP_CORES=",".join(map(str, cores)))
        if spec["kind"] == "python":
            env["MPI4PY_RC_INITIALIZE"] = "false"
        if spec.get("resumable"):
            checkpoints = self.paths.checkpoint_dir(execution)
            os.makedirs(checkpoints, mode=0o700, exist_ok=True)
            env["ODOP_CHECKPOINT_DIR"] = checkpoints
        return env

    # -- reaping ------------------------------------------------------------------------
    def reap(self) -> list[Exit]:
        """Collect every task that has exited, with its rusage."""
        exits = []
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if self.server is not None and pid == self.server.pid:
                self.server.dead = True
                continue
            proc = self._by_pid.pop(pid, None)
            if proc is not None:
                exits.append(self._learn(self._ended(proc, status, usage.ru_utime
                                                     + usage.ru_stime,
                                                     usage.ru_maxrss * 1024)))
        if self.server is not None:
            exits += self._served_exits()
            if self.server.dead:
                exits += self._server_died()
        if self.cgroups is not None and self.cgroups.pending:
            self.cgroups.sweep()
        return exits

    def _served_exits(self) -> list[Exit]:
        assert self.server is not None
        exits = []
        for msg in self.server.poll():
            proc = self._served.pop(int(msg["pid"]), None)
            if proc is not None:
                done = self._ended(proc, int(msg["status"]), float(msg["cpu_s"]),
                                   int(msg["max_rss_bytes"]))
                exits.append(self._learn(done, msg.get("imports")))
        return exits

    def _ended(self, proc: TaskProcess, status: int, cpu_s: float, max_rss: int) -> Exit:
        proc.signal(signal.SIGKILL)  # the group's stragglers go with their leader
        oom, cut = self._forget(proc)
        return exit_record(proc, status, cpu_s, max_rss, oom, cut)

    def _forget(self, proc: TaskProcess) -> tuple[bool, int]:
        """Drop ``proc``: close its output files (cut to their bound) and remove its cgroup.
        Returns (whether that cgroup saw an OOM kill, bytes of output cut)."""
        self.tasks.pop(proc.execution, None)
        self.memwatch.remove(proc.execution)
        output = self._outputs.pop(proc.execution, None)
        cut = output.finish() if output is not None else 0
        return self._drop_cgroup(proc.execution), cut

    def _drop_cgroup(self, execution: str) -> bool:
        """Remove the execution's cgroup, if it has one; True if it saw an OOM kill."""
        if execution not in self._bounded or self.cgroups is None:
            return False
        self._bounded.discard(execution)
        oom = self.cgroups.oom_killed(execution)
        self.cgroups.remove(execution)
        return oom

    def enforce(self, now: float | None = None) -> None:
        """Kill tasks past their time limit or (sampled) memory maximum, and stopped tasks
        past their grace period; cut output files past their bound."""
        now = time.monotonic() if now is None else now
        for proc in list(self.tasks.values()):
            if proc.deadline is not None and now > proc.deadline:
                proc.kill("time limit exceeded")
            elif proc.stopping_since is not None and now - proc.stopping_since > self.grace_s:
                proc.kill(proc.reason or "stopped")
        for execution, held in self.memwatch.over(now):
            self.memwatch.remove(execution)
            hog = self.tasks.get(execution)
            if hog is not None:
                hog.kill(memory_reason(hog, held))
        if now >= self._next_output_check:
            self._next_output_check = now + CHECK_S
            for output in self._outputs.values():
                output.check()

    def promote(self) -> int:
        """The simulation is over: lift the tasks started under it from SCHED_IDLE to the
        drain's footing (SCHED_OTHER at nice 19, autogroup nice 0), so that other load on
        the node cannot starve what remains. Best effort: an unprivileged engine may not
        raise a SCHED_IDLE task (RLIMIT_NICE). Returns the threads lifted."""
        lifted = 0
        for proc in self.tasks.values():
            pids = group_pids(proc.pid)
            for pid in pids:
                with contextlib.suppress(OSError), open(f"/proc/{pid}/autogroup", "w") as fh:
                    fh.write("0")
            for tid in threads_of(pids):
                with contextlib.suppress(OSError):
                    if os.sched_getscheduler(tid) == os.SCHED_IDLE:
                        os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                        lifted += 1
        return lifted

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
        end = time.monotonic() + LOST_AFTER_S
        while self.tasks and time.monotonic() < end:
            time.sleep(0.01)
            exits += self.reap()
        # never reported in time (gone from the fork server, or unkillable): the agent must
        # not hang on them, so they are recorded as lost
        return exits + [self._lost(p, reason) for p in list(self.tasks.values())]

    def _lost(self, proc: TaskProcess, reason: str) -> Exit:
        """An exit never reported (killed, yet not reaped in time): record it as lost."""
        self._by_pid.pop(proc.pid, None)
        self._served.pop(proc.pid, None)
        self._script_runs.pop(proc.execution, None)
        cut = self._forget(proc)[1]
        return Exit(proc.execution, None, signal.SIGKILL, f"{reason} (lost: no exit seen)", 0.0,
                    0, time.monotonic() - proc.started, cut)

    def close(self) -> None:
        """End the fork server (tasks still running from it die with it); remove the
        engine's cgroup folder where it can."""
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.server.pid, 0)
            self.server = None
        if self.cgroups is not None:
            self.cgroups.close()
        self.scripts.close()


def gpu_env(gpus: Sequence[int]) -> dict[str, str]:
    """What confines a task to its granted GPUs: CUDA numbers devices as NVML does (PCI bus
    order) and shows it only those. A task granted none sees none: it cannot slow a rank
    by using the rank's GPU unasked."""
    ids = ",".join(map(str, gpus))
    return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": ids, "ODOP_GPUS": ids}


def command_line(spec: Mapping[str, Any], args: Mapping[str, Any]) -> list[str]:
    """An executable or mpi task's command: its program (``target``), then its ``argv``
    with the ``{name}`` placeholders filled from the submission's arguments."""
    template = [spec.get("target", ""), *(spec.get("argv") or ())]
    return [str(part).format_map(args) for part in template]
