"""A zygote: a child of the fork server that has imported one task module, or what one
script imported on its previous runs, and forks that task's executions.

Forked from the fork server (odop.engine.forkserver), it goes into a session of its own
at idle priority (SCHED_IDLE, nice 19, autogroup nice 19: its imports must not slow the
ranks; grown for a task of the final drain, at the drain's footing, nice 19 only, so
that the drain's own tasks do not starve it), stops mpi4py from initialising MPI on
import (``rc.initialize = False``), and imports: a decorated function's module by its
target (under a private name for a file, so its ``if __name__ == "__main__":`` block
never runs), or a script's learned modules one by one (never ``mpi4py.MPI``). Then it
says ``up`` to the server: ``ok`` when the imports left it single-threaded (a
multi-threaded process must not fork), ``pools`` when a thread-pool library is mapped
(sized to one thread: tasks that want more are forked from the server instead), and
``file`` (the module's file, which the server watches for changes). It serves ``start``
(fork the task) and ``retire`` (take no more; exit after its last child), and reports
``started``/``error``/``exit`` as the server does.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

from odop.engine.forkloop import Loop
from odop.engine.scriptrun import preimport, script_folder
from odop.engine.worker import lower_priority
from odop.procs import die_with_parent

POOL_LIBRARIES = (b"openblas", b"libgomp", b"libiomp", b"libomp", b"mkl_", b"libtbb")
"""Shared-library name parts of thread pools that size themselves from the environment."""
PROBE_LIGHT, PROBE_HEAVY, PROBE_POOLS = 0, 1, 3
"""What importing did: left one thread; started threads; mapped a pool but started none."""


def threads_now() -> int:
    return len(os.listdir("/proc/self/task"))


def pools_mapped() -> bool:
    """True if this process has mapped a thread-pool library."""
    with open("/proc/self/maps", "rb") as fh:
        maps = fh.read()
    return any(name in maps for name in POOL_LIBRARIES)


def probe_code() -> int:
    """What importing did to this process (a PROBE_* code)."""
    if threads_now() > 1:
        return PROBE_HEAVY
    return PROBE_POOLS if pools_mapped() else PROBE_LIGHT


def no_mpi_init() -> None:
    """Have a later ``from mpi4py import MPI`` leave MPI uninitialised (mpi4py's rc)."""
    os.environ["MPI4PY_RC_INITIALIZE"] = "false"
    with contextlib.suppress(ImportError):
        import mpi4py

        mpi4py.rc.initialize = False
        mpi4py.rc.finalize = False


class Zygote(Loop):
    """Serves the starts of one module or script from its pre-imported state."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock)
        self.retiring = False

    def handle(self, msg: dict[str, Any]) -> None:
        if msg.get("op") == "start" and not self.retiring:
            self.fork_task(msg)
        elif msg.get("op") == "start":
            self.send({"op": "error", "execution": str(msg.get("execution", "")),
                       "error": "its zygote is retiring"})
        elif msg.get("op") == "retire":
            self.retiring = True
        self.running = not (self.retiring and not self.children)

    def reap(self) -> None:
        super().reap()
        if self.retiring and not self.children:
            self.running = False


def grow(sock: socket.socket, what: Mapping[str, Any], server: int) -> None:
    """In the child the server forked: import, say ``up``, serve; never returns."""
    code = 0
    try:
        die_with_parent(server, signal.SIGKILL)
        os.setsid()
        lower_priority(bool(what.get("drain")))  # in the drain: no rank to yield to
        if not what.get("script"):  # a script's child gets mpi4py as a fresh one would
            no_mpi_init()
        zygote = Zygote(sock)
        up = _import(what)
        pools = up.pop("pools", False)
        with contextlib.suppress(OSError):  # its children choose their own policy
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        zygote.send({"op": "up", "pid": os.getpid(), "pools": pools, **up})
        if up["ok"]:
            zygote.serve()
    except BaseException:  # noqa: BLE001 (the server sees the zygote gone)
        code = 1
    finally:
        os._exit(code)


def _import(what: Mapping[str, Any]) -> dict[str, Any]:
    """Import what the zygote is for; ``{"ok", "reason", "file", "pools"}``."""
    if what.get("script"):
        sys.path[0] = script_folder(str(what["script"]))
        os.chdir(str(what.get("cwd") or "."))
        failed = preimport(what.get("imports") or ())
        file = None
        reason = f"could not import {', '.join(failed[:3])}" if failed else ""
    else:
        from odop.tasks.target import load_callable, load_module, split_target

        try:
            load_callable(str(what["target"]))
        except BaseException as exc:  # noqa: BLE001 (its tasks import it and fail themselves)
            return {"ok": False, "reason": f"import failed: {exc}"[:300]}
        module = load_module(split_target(str(what["target"]))[0])
        file = getattr(module, "__file__", None)
        reason = ""
    code = probe_code()
    if code == PROBE_HEAVY:
        return {"ok": False, "reason": "its imports start threads"}
    if "mpi4py.MPI" in sys.modules and what.get("script"):
        return {"ok": False, "reason": "its imports load mpi4py.MPI"}
    return {"ok": True, "reason": reason, "file": file, "pools": code == PROBE_POOLS}
