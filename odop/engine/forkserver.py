"""The fork server: a single-threaded helper that forks one child per Python task.

A fresh interpreter per task costs ~100 ms and tens of MiB before the task's first line; a
fork of a process that has already imported odop's worker code (and, once proven harmless,
the task's own module) costs a millisecond or two. The engine starts this server
(``python -m odop.engine.forkserver <fd> <engine pid>``) and talks to it over a unix
socketpair in msgpack maps:

engine → server  ``{"op": "start", "execution", "target", "args", "cores", "env", "cwd",
                   "stdout", "stderr", "cgroup", "rlimit", "drain"}``
engine → server  ``{"op": "warm", "target"}``: probe (and, if harmless, pre-import) a
                   declared task's module now, before its first start
server → engine  ``{"op": "ready", "pid"}`` once, then ``{"op": "started", "execution",
                   "pid"}`` or ``{"op": "error", "execution", "error"}`` per start, and
                   ``{"op": "exit", "execution", "pid", "status", "cpu_s", "max_rss_bytes"}``
                   when a child has been reaped (status as from ``wait``; seconds, bytes).

Isolation: each child gets its own session, its grant as affinity, the worker's lowering
(odop.engine.worker.prepare) and its stdio on the execution's files before user code runs;
it ends with ``os._exit`` so nothing of the server's state runs twice. A child that crashes
or exits early only ends itself. The server dies with the engine (parent-death signal),
and its children die with it.

Task modules are pre-imported in the server only when a probe child has shown that
importing them starts no thread: a multi-threaded process must not fork. Thread-pool
libraries (OpenBLAS, OpenMP, MKL, TBB) size their pools from the environment when they
load, so the server runs with every thread variable at 1: a module that maps one (numpy,
for one) but starts no thread is pre-imported too, and serves every task that runs one
thread (most: a one-core grant). Once such a library is loaded, a task granted more
threads is refused (the engine then starts it in a fresh interpreter, where its pools get
its grant); a module that starts threads even so is imported by each child instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Mapping
from typing import Any

import msgpack

from odop.engine.spawn import thread_env
from odop.engine.worker import EXIT_SETUP, call, lower_priority, prepare
from odop.memory import trim_heap
from odop.procs import die_with_parent
from odop.tasks.target import load_callable, split_target

POOL_LIBRARIES = (b"openblas", b"libgomp", b"libiomp", b"libomp", b"mkl_", b"libtbb")
"""Shared-library name parts of thread pools that size themselves from the environment."""
PROBE_LIGHT, PROBE_HEAVY, PROBE_POOLS = 0, 1, 3
"""Probe exit codes: imports cleanly; starts threads; maps a thread pool but starts none."""
RECV_BYTES = 1 << 14
"""Most bytes read from the socket at once: a quarter of the unpacker's buffer, so that a
read with a partial request left over never makes the buffer grow (a grown buffer of a
few hundred KiB is mapped, freed, then kept on the heap by glibc's moving mmap
threshold: a lasting step in the server's memory)."""
READ_BUFFER_BYTES = 1 << 16
"""Initial size of the request unpacker's buffer (bytes; it grows for a larger request).
msgpack's default, 1 MiB, is touched a page further by each start until it has wrapped
once: about 1 MiB more resident memory over the first few thousand starts."""


def threads_now() -> int:
    return len(os.listdir("/proc/self/task"))


def pools_mapped() -> bool:
    """True if this process has mapped a thread-pool library."""
    with open("/proc/self/maps", "rb") as fh:
        maps = fh.read()
    return any(name in maps for name in POOL_LIBRARIES)


def probe_code() -> int:
    """What importing the module did to this process (a PROBE_* code)."""
    if threads_now() > 1:
        return PROBE_HEAVY
    return PROBE_POOLS if pools_mapped() else PROBE_LIGHT


class Server:
    """The server's loop: requests in, forks out, exits reported back."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.unpacker = msgpack.Unpacker(read_size=READ_BUFFER_BYTES)
        self.children: dict[int, str] = {}  # pid -> execution
        self.probes: dict[int, tuple[str, str]] = {}  # pid -> (module key, target)
        self.known: dict[str, str] = {}  # module key -> "probing" | "warm" | "cold"
        self.one_thread = False
        """A thread-pool library is loaded here, sized to one thread."""
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def serve(self) -> None:
        """Serve until the engine closes its end of the socket."""
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.send({"op": "ready", "pid": os.getpid()})
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while True:
            for fd, _ in poller.poll():
                if fd == self.wake_r:
                    _drain(self.wake_r)
                elif not self.receive():
                    return
            self.reap()
            trim_heap()  # at most once a minute

    def receive(self) -> bool:
        data = self.sock.recv(RECV_BYTES)
        if not data:
            return False
        self.unpacker.feed(data)
        for msg in self.unpacker:
            if not isinstance(msg, dict):
                continue
            if msg.get("op") == "start":
                self.start(msg)
            elif msg.get("op") == "warm" and isinstance(msg.get("target"), str):
                with contextlib.suppress(Exception):  # a bad target fails at its start
                    self.warm_up(msg["target"])
        return True

    def send(self, msg: Mapping[str, Any]) -> None:
        self.sock.sendall(msgpack.packb(dict(msg)))

    def start(self, msg: dict[str, Any]) -> None:
        execution = str(msg.get("execution", ""))
        if self.one_thread and _threads_wanted(msg) > 1:
            self.send({"op": "error", "execution": execution,
                       "error": "it wants more than one thread: a fresh interpreter sizes "
                                "its thread pools to its grant"})
            return
        try:
            self.warm_up(str(msg["target"]))
            sys.stdout.flush()
            sys.stderr.flush()
            ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
        except Exception as exc:
            self.send({"op": "error", "execution": execution, "error": f"{exc}"})
            return
        if pid == 0:
            os.close(ready_r)
            self.become_task(msg, ready_w)
        os.close(ready_w)
        self.children[pid] = execution
        _wait_ready(ready_r)
        self.send({"op": "started", "execution": execution, "pid": pid})

    def warm_up(self, target: str) -> None:
        """Probe a module the first time it is named (in a child, so the server stays safe)."""
        key = split_target(target)[0]
        if key in self.known:
            return
        self.known[key] = "probing"
        pid = os.fork()
        if pid == 0:
            self._probe(target)
        self.probes[pid] = (key, target)

    def _probe(self, target: str) -> None:
        code = 2
        try:
            self._detach()
            fd = os.open(os.devnull, os.O_RDWR)
            for std in (0, 1, 2):
                os.dup2(fd, std)
            die_with_parent(0, signal.SIGKILL)
            os.setsid()  # its own autogroup, niced: idle against every rank's session too
            lower_priority()  # only on CPU time nobody else wants: it must not slow the ranks
            load_callable(target)
            code = probe_code()
        finally:
            os._exit(code)

    def become_task(self, msg: Mapping[str, Any], ready: int) -> None:
        """In the child: set up, tell the server (so its pid is a process group pinned to
        the grant before anyone signals or re-pins it; told before the lowering, so a busy
        node's SCHED_IDLE never stalls the server), run the task, never return."""
        code = EXIT_SETUP
        try:
            try:
                self._detach()
                die_with_parent(os.getppid(), signal.SIGKILL)  # before anyone can pause it
                _setup_child(msg)
                os.close(ready)  # EOF either way: set up, or failed trying
                prepare({"parent": os.getppid(), "rlimit": msg.get("rlimit"),
                         "cgroup": msg.get("cgroup"), "drain": msg.get("drain")})
            except BaseException:
                traceback.print_exc()
                raise
            code = call(str(msg["target"]), msg.get("args") or {})
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):  # nothing left to tell
                    stream.flush()
            os._exit(code)

    def _detach(self) -> None:
        """In a fresh child: forget the server's signal wiring and sockets."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.sock.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

    def reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.probes:
                self._probed(pid, status)
                continue
            execution = self.children.pop(pid, None)
            if execution is not None:
                self.send({"op": "exit", "execution": execution, "pid": pid, "status": status,
                           "cpu_s": usage.ru_utime + usage.ru_stime,
                           "max_rss_bytes": usage.ru_maxrss * 1024})

    def _probed(self, pid: int, status: int) -> None:
        key, target = self.probes.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        self.known[key] = "cold"
        if code in (PROBE_LIGHT, PROBE_POOLS):
            try:
                load_callable(target)
            except BaseException:  # noqa: S110 (the children will import it and say why)
                return
            self.known[key] = "warm"
            self.one_thread = self.one_thread or pools_mapped()


def _setup_child(msg: Mapping[str, Any]) -> None:
    """Session, affinity, stdio, folder and environment (the lowering follows)."""
    os.setsid()
    os.sched_setaffinity(0, [int(c) for c in msg["cores"]])
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(msg["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    err = os.open(msg["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for fd, std in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, std)
        os.close(fd)
    os.chdir(msg["cwd"])
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in (msg.get("env") or {}).items()})
    sys.argv = [str(msg["target"])]


def _threads_wanted(msg: Mapping[str, Any]) -> int:
    """The thread count the engine gave a task (its OMP_NUM_THREADS; 1 if unset or bad)."""
    try:
        return int((msg.get("env") or {}).get("OMP_NUM_THREADS", 1))
    except (TypeError, ValueError):
        return 1


def _wait_ready(fd: int, timeout_s: float = 5.0) -> None:
    """Wait until a new child has closed its end of the ready pipe (seconds)."""
    try:
        select.select([fd], [], [], timeout_s)
    finally:
        os.close(fd)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def main(argv: list[str]) -> int:
    """Entry point: ``python -m odop.engine.forkserver <socket fd> <engine pid>``."""
    die_with_parent(int(argv[1]), signal.SIGKILL)
    os.environ.update(thread_env(1))  # thread pools loaded here start none
    sock = socket.socket(fileno=int(argv[0]))
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        Server(sock).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
