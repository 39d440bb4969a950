"""The shim every task starts in: it lowers itself, arms its own death, then runs the task.

``python -m odop.engine.worker`` reads its orders from ``ODOP_TASK`` (base64 msgpack):
``{"kind", "target", "argv", "args", "cgroup", "rlimit", "parent", "drain"}``. Before any
user code runs it asks the kernel to kill it when the engine dies, sets SCHED_IDLE, nice 19
(also for its autogroup) and the idle IO class, and bounds its memory (joins its cgroup, or
sets the rlimit it was given; a task with neither is sampled by the engine); then it calls
the Python function or execs the program (which keeps those settings).
The fork server's children run the same :func:`prepare` and :func:`call`.
"""

from __future__ import annotations

import base64
import os
import platform
import resource
import signal
import sys
import traceback
from collections.abc import Mapping
from typing import Any

import msgpack

from odop.procs import die_with_parent, libc

IOPRIO_SET = {"x86_64": 251, "aarch64": 30, "ppc64le": 273}
IOPRIO_CLASS_IDLE = 3
EXIT_OK = 0
EXIT_FAILED = 1
"""Exit status of a Python task whose function raised."""
EXIT_MEMORY = 97
"""Exit status meaning the task ran out of its memory bound."""
EXIT_SETUP = 98
"""Exit status meaning the task could not be loaded or set up (bad target, missing module)."""


def lower_priority(drain: bool = False) -> None:
    """Below the simulation whatever the kernel's grouping: SCHED_IDLE, nice 19, the nice of
    this session's autogroup (a new session is a new autogroup, where plain nice would not
    count against the ranks' group), and the idle IO class. During the final ``drain``
    there is no simulation left to protect: the task keeps nice 19 inside its own session
    but competes normally with other sessions, so other load on the node cannot stall it."""
    os.setpriority(os.PRIO_PROCESS, 0, 19)
    if not drain:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        try:
            with open("/proc/self/autogroup", "w") as fh:
                fh.write("19")
        except OSError:  # no autogroup support (or not allowed): SCHED_IDLE still holds
            pass
    number = IOPRIO_SET.get(platform.machine())
    if number is not None:
        libc().syscall(number, 1, 0, IOPRIO_CLASS_IDLE << 13)  # IOPRIO_WHO_PROCESS, self


def bound_memory(limit: int | None, cgroup: str | None = None) -> None:
    """Join ``cgroup`` (whose limit the engine set), and cap the data segment (heap and
    private writable mappings) at ``limit`` bytes when given one."""
    if cgroup:
        with open(os.path.join(cgroup, "cgroup.procs"), "w") as fh:
            fh.write(str(os.getpid()))
    if limit:
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)  # never above what this process may set
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def prepare(order: Mapping[str, Any]) -> None:
    """Everything that must hold before user code: death with the engine, priority, memory."""
    die_with_parent(int(order.get("parent") or 0), signal.SIGKILL)
    lower_priority(bool(order.get("drain")))
    bound_memory(order.get("rlimit"), order.get("cgroup"))


def call(target: str, args: Mapping[str, Any]) -> int:
    """Load and call a Python task; returns its exit status (0, 1, 97 or 98)."""
    from odop.tasks.target import load_callable

    try:
        func = load_callable(target)
    except Exception:
        traceback.print_exc()
        return EXIT_SETUP
    try:
        func(**args)
    except MemoryError:
        traceback.print_exc()
        return EXIT_MEMORY
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        return EXIT_FAILED
    return EXIT_OK


def run(order: Mapping[str, Any]) -> int:
    """Execute one task order; returns the exit status for a Python task."""
    if order["kind"] != "python":
        os.execvp(order["argv"][0], order["argv"])
    return call(order["target"], order["args"])


def main() -> int:
    order = msgpack.unpackb(base64.b64decode(os.environ.pop("ODOP_TASK")))
    try:
        prepare(order)
    except OSError:
        traceback.print_exc()
        return EXIT_SETUP
    code = run(order)
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def encode_order(order: Mapping[str, Any]) -> str:
    return base64.b64encode(msgpack.packb(dict(order))).decode()


if __name__ == "__main__":
    sys.exit(main())
