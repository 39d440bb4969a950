"""The fork server: a single-threaded helper that forks Python tasks, warm.

A fresh interpreter per task costs ~100 ms and tens of MiB before the task's first line,
plus its imports (numpy: ~70 ms more); a fork of a process that has imported them already
costs a millisecond or two. The engine starts this server (``python -m
odop.engine.forkserver <fd> <engine pid>``), which has imported odop's worker code and
nothing of the tasks, and talks to it over a unix socketpair in msgpack maps:

engine → server  ``{"op": "start", "execution", "target", "args", "cores", "env", "cwd",
                   "stdout", "stderr", "cgroup", "rlimit", "drain"}``, for a script task
                   also ``"script"`` (its path), ``"argv"`` (its arguments) and
                   ``"imports"`` (the modules it imported on its previous runs)
engine → server  ``{"op": "warm", "target"}``: grow a declared task's zygote now
server → engine  ``{"op": "ready", "pid"}`` once, then ``{"op": "started", "execution",
                   "pid"}`` or ``{"op": "error", "execution", "error"}`` per start, and
                   ``{"op": "exit", "execution", "pid", "status", "cpu_s", "max_rss_bytes"}``
                   (status as from ``wait``; seconds, bytes; a script's exit adds
                   ``"imports"``, the modules it imported that are worth pre-importing)

Zygotes (odop.engine.zygote): per task module, and per script with its learned imports,
the server forks a child that imports them once and then forks that task's executions.
The server routes each start to its zygote when the zygote is up and still current: the
module's file unchanged since its import (else it retires, finishing its running tasks,
and a new one grows), a script's learned imports all among its own, and the task asking
one thread where the zygote mapped a thread-pool library (sized to one thread there).
Every other start — the zygote still importing, its imports failed or started threads,
or the task wants more threads — is forked from the server itself, where the child
imports what it needs under its own thread variables. A zygote's exits and replies are
relayed; a zygote that dies has its started tasks reported killed (they die with it) and
its pending starts refused (the engine starts those afresh).

Isolation: each task child gets its own session, its grant, the worker's lowering and
its stdio on the execution's files before user code runs (odop.engine.forkloop). A child
that crashes or exits early only ends itself. The server dies with the engine
(parent-death signal), its zygotes with it, and every task with its parent.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

import msgpack

from odop.engine import zygote as _zygote
from odop.engine.forkloop import READ_BUFFER_BYTES, RECV_BYTES, Loop, threads_wanted
from odop.engine.spawn import thread_env
from odop.procs import die_with_parent
from odop.tasks.target import split_target

__all__ = ["READ_BUFFER_BYTES", "Server", "main"]


@dataclass
class Zy:
    """The server's view of one zygote."""

    key: str
    pid: int
    sock: socket.socket
    what: dict[str, Any]
    unpacker: Any = field(default_factory=lambda: msgpack.Unpacker(read_size=READ_BUFFER_BYTES))
    state: str = "importing"  # then "ready"; "retired" once told to go
    stamp: tuple[int, int, int] | None = None
    file: str | None = None
    pools: bool = False
    pending: set[str] = field(default_factory=set)
    started: dict[str, int] = field(default_factory=dict)


def file_stamp(path: str | None) -> tuple[int, int, int] | None:
    """(mtime ns, size, inode) of ``path``; None when there is none."""
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Server(Loop):
    """Routes starts to zygotes, grows and retires them, relays what they report."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.zygotes: dict[str, Zy] = {}  # key -> the current zygote
        self.by_pid: dict[int, Zy] = {}  # every zygote alive, retired ones too
        self.cold: dict[str, tuple[tuple[int, int, int] | None, str]] = {}
        """key -> (file stamp, reason): no zygote until the file changes."""

    def handle(self, msg: dict[str, Any]) -> None:
        if msg.get("op") == "start":
            self.start(msg)
        elif msg.get("op") == "warm" and isinstance(msg.get("target"), str):
            with contextlib.suppress(Exception):  # a bad target fails at its start
                self.current(*_key(msg))

    def start(self, msg: dict[str, Any]) -> None:
        try:  # a script that has taught nothing yet gets no zygote: forked from here
            zy = self.current(*_key(msg)) if msg.get("imports") or not msg.get("script") \
                else None
        except Exception:  # a bad target: its child says why
            zy = None
        if zy is not None and zy.state == "ready" and not (zy.pools and threads_wanted(msg) > 1):
            execution = str(msg.get("execution", ""))
            try:
                zy.sock.sendall(msgpack.packb(msg))
            except OSError:
                pass  # gone: its death is being reported; this one starts here
            else:
                zy.pending.add(execution)
                return
        self.fork_task(msg)

    def current(self, key: str, what: dict[str, Any]) -> Zy | None:
        """The zygote for ``key``, grown now if there is none (None when it cannot be)."""
        zy = self.zygotes.get(key)
        if zy is not None and self._stale(zy, what):
            self.retire(zy)
            zy = None
        if zy is None and not self._cold(key, what):
            zy = self.grow(key, what)
        return zy

    def _stale(self, zy: Zy, what: dict[str, Any]) -> bool:
        if zy.state == "ready" and zy.file and file_stamp(zy.file) != zy.stamp:
            return True
        return not set(what.get("imports") or ()) <= set(zy.what.get("imports") or ())

    def _cold(self, key: str, what: dict[str, Any]) -> bool:
        entry = self.cold.get(key)
        if entry is None:
            return False
        if entry[0] != file_stamp(what.get("file")):  # changed: worth another try
            del self.cold[key]
            return False
        return True

    def grow(self, key: str, what: dict[str, Any]) -> Zy:
        sys.stdout.flush()
        sys.stderr.flush()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            ours.close()
            self.detach()
            _zygote.grow(theirs, what, os.getppid())
        theirs.close()
        ours.setblocking(False)
        zy = Zy(key, pid, ours, what)
        self.zygotes[key] = self.by_pid[pid] = zy
        self.others[ours.fileno()] = lambda: self.on_zygote(zy)
        return zy

    def retire(self, zy: Zy) -> None:
        """Take no more starts to ``zy``; it exits after its last task."""
        if self.zygotes.get(zy.key) is zy:
            del self.zygotes[zy.key]
        zy.state = "retired"
        with contextlib.suppress(OSError):
            zy.sock.sendall(msgpack.packb({"op": "retire"}))

    def detach(self) -> None:
        super().detach()
        for zy in self.by_pid.values():
            zy.sock.close()

    def on_zygote(self, zy: Zy) -> None:
        """Read what ``zy`` sent: its ``up``, and replies and exits to relay."""
        while True:
            try:
                data = zy.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.others.pop(zy.sock.fileno(), None)
                break
            zy.unpacker.feed(data)
        for msg in zy.unpacker:
            if isinstance(msg, dict):
                self._from_zygote(zy, msg)

    def _from_zygote(self, zy: Zy, msg: dict[str, Any]) -> None:
        op, execution = msg.get("op"), str(msg.get("execution", ""))
        if op == "up":
            self._up(zy, msg)
            return
        if op == "started":
            zy.pending.discard(execution)
            zy.started[execution] = int(msg["pid"])
        elif op == "error":
            zy.pending.discard(execution)
        elif op == "exit":
            zy.started.pop(execution, None)
        self.send(msg)

    def _up(self, zy: Zy, msg: dict[str, Any]) -> None:
        if not msg.get("ok"):
            self.cold[zy.key] = (file_stamp(zy.what.get("file")), str(msg.get("reason")))
            if self.zygotes.get(zy.key) is zy:
                del self.zygotes[zy.key]
            return
        if zy.state == "importing":
            zy.state = "ready"
        zy.file = msg.get("file") or zy.what.get("file")
        zy.stamp = file_stamp(zy.file)
        zy.pools = bool(msg.get("pools"))

    def reaped(self, pid: int, status: int, usage: Any) -> None:
        zy = self.by_pid.pop(pid, None)
        if zy is None:
            super().reaped(pid, status, usage)
            return
        if zy.sock.fileno() in self.others:
            self.on_zygote(zy)  # what it sent before it ended
        self.others.pop(zy.sock.fileno(), None)
        zy.sock.close()
        if self.zygotes.get(zy.key) is zy:
            del self.zygotes[zy.key]
            self.cold.setdefault(zy.key, (file_stamp(zy.what.get("file")), "its zygote died"))
        for execution in zy.pending:
            self.send({"op": "error", "execution": execution, "error": "its zygote died"})
        for execution, child in zy.started.items():
            self.send({"op": "exit", "execution": execution, "pid": child,
                       "status": signal.SIGKILL, "cpu_s": 0.0, "max_rss_bytes": 0})


def _key(msg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The zygote a start (or warm) request belongs to, and what that zygote imports."""
    if msg.get("script"):
        path = os.path.join(str(msg.get("cwd") or "."), str(msg["script"]))
        imports = sorted(str(m) for m in msg.get("imports") or ())
        return f"script:{os.path.realpath(path)}", {"script": path, "imports": imports,
                                                    "cwd": msg.get("cwd"), "file": path,
                                                    "drain": msg.get("drain")}
    target = str(msg["target"])
    where = split_target(target)[0]
    file = os.path.abspath(where) if where.endswith(".py") or os.sep in where else None
    return where, {"target": target, "file": file, "drain": msg.get("drain")}


def main(argv: list[str]) -> int:
    """Entry point: ``python -m odop.engine.forkserver <socket fd> <engine pid>``."""
    die_with_parent(int(argv[1]), signal.SIGKILL)
    # thread pools loaded here start none; mpi4py (>= 4) imported here leaves MPI alone
    os.environ.update(thread_env(1), MPI4PY_RC_INITIALIZE="false")
    sock = socket.socket(fileno=int(argv[0]))
    server = Server(sock)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        server.send({"op": "ready", "pid": os.getpid()})
        server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
