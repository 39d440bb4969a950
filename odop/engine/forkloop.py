"""What the fork server and its zygotes share: a single-threaded loop over a msgpack
socket, and forking one task child with its set-up, its run and its exit report.

A task child: its own session, its grant as affinity, stdio on the execution's files,
its folder and environment, the worker's lowering (odop.engine.worker.prepare), then the
Python function (``target``) or the script (``script`` and ``argv``, as ``python script
ARGS``: odop.engine.scriptrun); it ends with ``os._exit`` so nothing of its parent's
state runs twice. A script child writes the modules it imported to a pipe, which the
loop sends on with the exit (``imports``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from odop.engine.scriptrun import learned, run_script, script_folder
from odop.engine.worker import EXIT_SETUP, call, prepare
from odop.memory import trim_heap
from odop.procs import die_with_parent

RECV_BYTES = 1 << 14
"""Most bytes read from the socket at once: a quarter of the unpacker's buffer, so that a
read with a partial request left over never makes the buffer grow (a grown buffer of a
few hundred KiB is mapped, freed, then kept on the heap by glibc's moving mmap
threshold: a lasting step in the server's memory)."""
READ_BUFFER_BYTES = 1 << 16
"""Initial size of the request unpacker's buffer (bytes; it grows for a larger request).
msgpack's default, 1 MiB, is touched a page further by each start until it has wrapped
once: about 1 MiB more resident memory over the first few thousand starts."""
REPORT_MAX_BYTES = 60_000
"""Most bytes of module names a script child reports (under a pipe's 64 KiB buffer)."""


class Loop:
    """A socket to serve, children to fork and reap; subclasses handle the messages."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.unpacker = msgpack.Unpacker(read_size=READ_BUFFER_BYTES)
        self.children: dict[int, tuple[str, int]] = {}  # pid -> (execution, report fd)
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.others: dict[int, Callable[[], None]] = {}  # more fds to poll -> handler
        self.running = True

    def handle(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    def serve(self) -> None:
        """Serve until the peer closes the socket or ``running`` turns False."""
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        polled: set[int] = set()
        while self.running:
            for fd in set(self.others) - polled:
                poller.register(fd, select.POLLIN)
            for fd in polled - set(self.others):
                poller.unregister(fd)
            polled = set(self.others)
            for fd, _ in poller.poll(1000):
                if fd == self.wake_r:
                    _drain(self.wake_r)
                elif fd == self.sock.fileno():
                    self.running = self.receive() and self.running
                elif fd in self.others:
                    self.others[fd]()
            self.reap()
            trim_heap()  # at most once a minute

    def receive(self) -> bool:
        data = self.sock.recv(RECV_BYTES)
        if not data:
            return False
        self.unpacker.feed(data)
        for msg in self.unpacker:
            if isinstance(msg, dict):
                self.handle(msg)
        return True

    def send(self, msg: Mapping[str, Any]) -> None:
        self.sock.sendall(msgpack.packb(dict(msg)))

    def fork_task(self, msg: dict[str, Any]) -> None:
        """Fork one task child; answer ``started`` once it is set up, or ``error``."""
        execution = str(msg.get("execution", ""))
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
            report_r, report_w = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
        except Exception as exc:
            self.send({"op": "error", "execution": execution, "error": f"{exc}"})
            return
        if pid == 0:
            os.close(ready_r)
            os.close(report_r)
            self.detach()
            become_task(msg, ready_w, report_w)
        os.close(ready_w)
        os.close(report_w)
        os.set_blocking(report_r, False)
        self.children[pid] = (execution, report_r)
        _wait_ready(ready_r)
        self.send({"op": "started", "execution": execution, "pid": pid})

    def detach(self) -> None:
        """In a fresh child: forget this loop's signal wiring, sockets and pipes."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.sock.close()
        for fd in (self.wake_r, self.wake_w, *(r for _, r in self.children.values())):
            with contextlib.suppress(OSError):
                os.close(fd)

    def reap(self) -> None:
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.reaped(pid, status, usage)

    def reaped(self, pid: int, status: int, usage: Any) -> None:
        """A child has ended: report it if it was a task."""
        child = self.children.pop(pid, None)
        if child is None:
            return
        execution, report = child
        msg = {"op": "exit", "execution": execution, "pid": pid, "status": status,
               "cpu_s": usage.ru_utime + usage.ru_stime,
               "max_rss_bytes": usage.ru_maxrss * 1024}
        imports = _read_report(report)
        if imports is not None:
            msg["imports"] = imports
        self.send(msg)


def become_task(msg: Mapping[str, Any], ready: int, report: int) -> None:
    """In the child: become a session pinned to the grant, tell the parent (so its pid is
    a process group on its grant before anyone signals or re-pins it; told before the rest
    of the set-up and the lowering, so that neither a slow file system nor a busy node's
    SCHED_IDLE stalls the start), set up, run the task, never return."""
    code = EXIT_SETUP
    try:
        try:
            try:
                die_with_parent(os.getppid(), signal.SIGKILL)  # before anyone can pause it
                os.setsid()
                os.sched_setaffinity(0, [int(c) for c in msg["cores"]])
            finally:
                os.close(ready)  # EOF either way: a group on its grant, or failed trying
            _setup_child(msg)
            prepare({"parent": os.getppid(), "rlimit": msg.get("rlimit"),
                     "cgroup": msg.get("cgroup"), "drain": msg.get("drain")})
        except BaseException:
            traceback.print_exc()
            raise
        if msg.get("script"):
            before = set(sys.modules)
            code = run_script(str(msg["script"]), [str(a) for a in msg.get("argv") or ()])
            new = learned(set(sys.modules) - before, script_folder(str(msg["script"])))
            _write_report(report, new)
        else:
            code = call(str(msg["target"]), msg.get("args") or {})
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):  # nothing left to tell
                stream.flush()
        os._exit(code)


def _setup_child(msg: Mapping[str, Any]) -> None:
    """Stdio, folder and environment (the lowering follows)."""
    os.makedirs(os.path.dirname(msg["stdout"]), mode=0o700, exist_ok=True)  # the engine's
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(msg["stdout"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    err = os.open(msg["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    for fd, std in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, std)
        os.close(fd)
    os.chdir(msg["cwd"])
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in (msg.get("env") or {}).items()})
    sys.argv = [str(msg.get("script") or msg.get("target"))]


def _write_report(fd: int, modules: list[str]) -> None:
    data = msgpack.packb(modules)
    if len(data) > REPORT_MAX_BYTES:
        data = msgpack.packb(modules[: len(modules) * REPORT_MAX_BYTES // len(data)])
    with contextlib.suppress(OSError):
        os.write(fd, data)


def _read_report(fd: int) -> list[str] | None:
    try:
        data = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(fd, 1 << 16):
                data += chunk
    finally:
        os.close(fd)
    if not data:
        return None
    with contextlib.suppress(Exception):
        names = msgpack.unpackb(data)
        if isinstance(names, list):
            return [str(n) for n in names]
    return None


def threads_wanted(msg: Mapping[str, Any]) -> int:
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
