"""The engine's end of the fork server: start it, ask it for tasks, hear about their exits."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgpack

from odop.errors import OdopError

REPLY_TIMEOUT_S = 5.0


class ForkServerError(OdopError, OSError):
    """The fork server is not ready, refused a start, or is gone (use the fresh path)."""


class ForkClient:
    """One running fork server; ``pid`` is its process (a direct child of the engine)."""

    def __init__(self, env: Mapping[str, str], cwd: str, log: Path) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unpacker = msgpack.Unpacker(read_size=1 << 16)  # 64 KiB, as the server (why: there)
        self.exits: list[dict[str, Any]] = []
        self.ready = False
        self.dead = False
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "odop.engine.forkserver", str(theirs.fileno()),
                str(os.getpid())]
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                    0o600),
                   (os.POSIX_SPAWN_DUP2, 1, 2)]
        here = os.getcwd()
        try:
            os.set_inheritable(theirs.fileno(), True)
            os.chdir(cwd)
            self.pid = os.posix_spawn(sys.executable, argv, dict(env), file_actions=actions,
                                      setsid=True)
        finally:
            os.chdir(here)
            theirs.close()
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def start(self, order: Mapping[str, Any]) -> int:
        """Fork one task; returns its pid, or raises ForkServerError (nothing started)."""
        self.send_start(order)
        return self.started(order["execution"])

    def send_start(self, order: Mapping[str, Any]) -> None:
        """Ask for one task (answer with :meth:`started`); ForkServerError if it cannot."""
        if self.dead or not self.ready_now():
            raise ForkServerError("the fork server is not ready")
        try:
            self.sock.sendall(msgpack.packb({"op": "start", **order}))
        except OSError as exc:
            self.dead = True
            raise ForkServerError(f"the fork server is gone: {exc}") from exc

    def started(self, execution: str) -> int:
        """The pid of a task asked for with :meth:`send_start`; ForkServerError if the
        server refused it, is gone, or did not answer in time (then nothing runs)."""
        end = time.monotonic() + REPLY_TIMEOUT_S
        answer: dict[str, Any] | None = None
        while answer is None and not self.dead and time.monotonic() < end:
            for msg in self._read(end - time.monotonic()):  # keep every other message
                if msg.get("execution") == execution and msg.get("op") in ("started", "error"):
                    answer = msg
                else:
                    self._keep(msg)
        if answer is None:
            self.kill()
            raise ForkServerError(f"the fork server did not answer for {execution}")
        if answer["op"] == "error":
            raise ForkServerError(f"the fork server refused {execution}: {answer.get('error')}")
        return int(answer["pid"])

    def warm(self, target: str) -> None:
        """Ask the server to probe ``target``'s module now (no reply; ignored if gone)."""
        with contextlib.suppress(OSError):
            self.sock.sendall(msgpack.packb({"op": "warm", "target": target}))

    def wait_ready(self, timeout_s: float = 10.0) -> bool:
        """Block until the server has said it is ready (seconds); False on timeout."""
        end = time.monotonic() + timeout_s
        while not self.ready and not self.dead and time.monotonic() < end:
            for msg in self._read(min(0.05, max(0.0, end - time.monotonic()))):
                self._keep(msg)
        return self.ready

    def poll(self) -> list[dict[str, Any]]:
        """Exit reports received so far (never blocks)."""
        for msg in self._read(0.0):
            self._keep(msg)
        exits, self.exits = self.exits, []
        return exits

    def kill(self) -> None:
        """End the server (its children die with it: parent-death signal)."""
        self.dead = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        self.kill()
        self.sock.close()

    def ready_now(self) -> bool:
        """True once the server said it is ready (reads what it sent, without waiting)."""
        if not self.ready:
            self.poll()
        return self.ready

    def _keep(self, msg: dict[str, Any]) -> None:
        if msg.get("op") == "ready":
            self.ready = True
        elif msg.get("op") == "exit":
            self.exits.append(msg)

    def _read(self, timeout_s: float) -> list[dict[str, Any]]:
        if self.dead and self.sock.fileno() < 0:
            return []
        if timeout_s > 0:
            select.select([self.sock], [], [], timeout_s)
        while True:
            try:
                data = self.sock.recv(1 << 14)  # as forkloop.RECV_BYTES
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:
                self.dead = True
                break
            self.unpacker.feed(data)
        return [m for m in self.unpacker if isinstance(m, dict)]
