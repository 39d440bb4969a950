"""Memory bounds through a delegated cgroup v2 subtree, where the engine may write one.

Layout, under the engine's own cgroup ``<own>`` (read from /proc/self/cgroup):
``<own>/odop-<engine pid>/`` with the memory controller enabled for its children, and one
``<execution>/`` below it per bounded task, whose ``memory.max`` (bytes) the engine writes
and whose ``cgroup.procs`` the task joins itself before user code runs. On exit the
engine reads ``memory.events`` (``oom_kill``) and removes the folder.

Usable only if /sys/fs/cgroup is a cgroup2 mount, ``<own>`` is writable and offers the
memory controller, and enabling it for ``<own>``'s children is allowed (cgroup v2 forbids
that while processes sit in ``<own>`` itself, so the engine first moves itself to a leaf
``<own>/odop-engine-<pid>/`` — only when it is alone there). Otherwise the engine falls back
to an rlimit (see odop.engine.worker.bound_memory).
"""

from __future__ import annotations

import os
from pathlib import Path

MOUNT = "/sys/fs/cgroup"


class CgroupTree:
    """Per-execution memory cgroups below ``base`` (a folder in a cgroup v2 hierarchy)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pending: set[str] = set()  # folders to remove once their processes are gone

    @classmethod
    def detect(cls, mount: Path = Path(MOUNT), *, mountinfo: str | None = None,
               own: str | None = None) -> CgroupTree | None:
        """The tree if this process may bound memory with cgroup v2 here, else None.
        ``mountinfo``, ``own`` (tests): /proc/self/mountinfo text, this process's cgroup
        path; ``mount``: where the hierarchy's files are (it must be mounted at MOUNT)."""
        try:
            info = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
            if not _is_cgroup2(info, MOUNT):
                return None
            own = own if own is not None else _own_cgroup(Path("/proc/self/cgroup").read_text())
            if own is None:
                return None
            return cls._setup(mount / own.lstrip("/"))
        except OSError:
            return None

    @classmethod
    def _setup(cls, here: Path) -> CgroupTree | None:
        if not (os.access(here, os.W_OK) and os.access(here / "cgroup.subtree_control", os.W_OK)):
            return None
        if "memory" not in (here / "cgroup.controllers").read_text().split():
            return None
        if not _enable_memory(here):
            return None
        base = here / f"odop-{os.getpid()}"
        base.mkdir(exist_ok=True)
        (base / "cgroup.subtree_control").write_text("+memory")
        return cls(base)

    def create(self, execution: str, memory_max: int) -> str:
        """A cgroup for ``execution`` bounded at ``memory_max`` bytes; returns its path."""
        folder = self._folder(execution)
        os.makedirs(folder, exist_ok=True)
        _write(os.path.join(folder, "memory.max"), str(int(memory_max)))
        swap = os.path.join(folder, "memory.swap.max")
        if os.path.exists(swap):
            _write(swap, "0")
        return folder

    def _folder(self, execution: str) -> str:
        # a str, not a Path: see RunPaths.task_dir (pathlib interns every component)
        return os.path.join(self.base, execution)

    def oom_killed(self, execution: str) -> bool:
        """True if the kernel killed something in this execution's cgroup for memory."""
        try:
            with open(os.path.join(self._folder(execution), "memory.events")) as f:
                text = f.read()
        except OSError:
            return False
        counts = dict(line.split() for line in text.splitlines() if line.strip())
        return int(counts.get("oom_kill", 0)) > 0

    def remove(self, execution: str) -> None:
        """Remove the execution's cgroup now, or later once its last process is gone."""
        self.pending.add(self._folder(execution))
        self.sweep()

    def sweep(self) -> None:
        """Retry removals that failed because a process was still dying (EBUSY)."""
        for folder in list(self.pending):
            try:
                os.rmdir(folder)
            except FileNotFoundError:
                pass
            except OSError:
                continue
            self.pending.discard(folder)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _is_cgroup2(mountinfo: str, mount: str) -> bool:
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" in fields and fields[4] == mount:
            return fields[fields.index("-") + 1] == "cgroup2"
    return False


def _own_cgroup(proc_cgroup: str) -> str | None:
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip()
    return None


def _enable_memory(here: Path) -> bool:
    """Enable the memory controller for ``here``'s children, moving this process to a leaf
    first if it is the only one in ``here``."""
    control = here / "cgroup.subtree_control"
    if "memory" in control.read_text().split():
        return True
    procs = [p for p in (here / "cgroup.procs").read_text().split() if p]
    if procs and procs != [str(os.getpid())]:
        return False
    if procs:
        leaf = here / f"odop-engine-{os.getpid()}"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))
    try:
        control.write_text("+memory")
    except OSError:
        return False
    return True
