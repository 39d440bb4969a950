"""Memory bounds through a memory cgroup the engine may write: cgroup v2, else v1.

Layout, under the engine's own cgroup ``<own>`` (read from /proc/self/cgroup):
``<own>/odop-<engine pid>/`` and one ``<execution>/`` below it per bounded task, whose
limit (bytes) the engine writes and whose ``cgroup.procs`` the task joins itself before
user code runs, so that every process it starts is in it too. On exit the engine reads
whether the kernel killed something there for memory, and removes the folder.

- **v2** (``/sys/fs/cgroup`` is a ``cgroup2`` mount): ``memory.max``, ``memory.swap.max
  = 0``, ``memory.oom.group = 1`` (an OOM kill takes the whole task); the kill is
  ``oom_kill`` in ``memory.events``. Usable when ``<own>`` is writable, offers the memory
  controller, and it can be enabled for ``<own>``'s children (v2 forbids that while
  processes sit in ``<own>`` itself, so the engine first moves itself to a leaf
  ``<own>/odop-engine-<pid>/`` — only when it is alone there).
- **v1** (a ``cgroup`` mount with the ``memory`` controller, e.g. /sys/fs/cgroup/memory):
  ``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes`` (no swap beyond it, where
  swap accounting is on); the kill is ``oom_kill`` in ``memory.oom_control`` (Linux 4.13+).
  Usable when ``<own>`` in that hierarchy is writable.

Neither: the engine samples the task's memory instead (odop.engine.memwatch).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from odop.procs import pid_alive

MOUNT = "/sys/fs/cgroup"
_OURS = re.compile(r"odop-(?:engine-)?(\d+)$")


class CgroupTree:
    """Per-execution memory cgroups below ``base`` (a folder in a cgroup v2 hierarchy)."""

    version = 2

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
        sweep_stale(here)
        base = here / f"odop-{os.getpid()}"
        base.mkdir(exist_ok=True)
        (base / "cgroup.subtree_control").write_text("+memory")
        return cls(base)

    @property
    def how(self) -> str:
        """How the bound is enforced, in words (for reasons and logs)."""
        return f"memory cgroup v{self.version}: killed by the kernel"

    def create(self, execution: str, memory_max: int) -> str:
        """A cgroup for ``execution`` bounded at ``memory_max`` bytes; returns its path."""
        folder = self._folder(execution)
        os.makedirs(folder, exist_ok=True)
        self._limit(folder, int(memory_max))
        return folder

    def _limit(self, folder: str, memory_max: int) -> None:
        _write(os.path.join(folder, "memory.max"), str(memory_max))
        for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
            path = os.path.join(folder, name)
            if os.path.exists(path):
                _write(path, value)

    def _folder(self, execution: str) -> str:
        # a str, not a Path: see RunPaths.task_dir (pathlib interns every component)
        return os.path.join(self.base, execution)

    def oom_killed(self, execution: str) -> bool:
        """True if the kernel killed something in this execution's cgroup for memory."""
        counts = _counts(os.path.join(self._folder(execution), "memory.events"))
        return counts.get("oom_kill", 0) > 0

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

    def close(self) -> None:
        """Remove what can be removed now: the executions' folders, then ``base``."""
        self.sweep()
        with contextlib.suppress(OSError):
            os.rmdir(self.base)


class CgroupV1(CgroupTree):
    """Per-execution memory cgroups below ``base``, in a cgroup v1 ``memory`` hierarchy."""

    version = 1

    @classmethod
    def detect(cls, mount: Path = Path("/"), *, mountinfo: str | None = None,
               own: str | None = None) -> CgroupV1 | None:
        """The tree if this process may bound memory with cgroup v1 here, else None.
        ``mount`` (tests): the folder standing for ``/``; ``mountinfo``, ``own``: as for v2
        (``own``: this process's path in the memory hierarchy)."""
        try:
            info = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
            found = _v1_memory_mount(info)
            if own is None:
                own = _own_v1(Path("/proc/self/cgroup").read_text())
            if found is None or own is None:
                return None
            point, root = found
            inside = os.path.relpath(own, root)
            if inside.startswith(".."):
                return None  # this process's cgroup is not visible under that mount
            here = mount / point.lstrip("/") / inside
            if not (os.access(here, os.W_OK) and (here / "memory.limit_in_bytes").exists()):
                return None
            sweep_stale(here)
            base = here / f"odop-{os.getpid()}"
            base.mkdir(exist_ok=True)
            return cls(Path(os.path.normpath(base)))
        except OSError:
            return None

    def _limit(self, folder: str, memory_max: int) -> None:
        _write(os.path.join(folder, "memory.limit_in_bytes"), str(memory_max))
        memsw = os.path.join(folder, "memory.memsw.limit_in_bytes")  # after: it must be >=
        if os.path.exists(memsw):
            _write(memsw, str(memory_max))

    def oom_killed(self, execution: str) -> bool:
        counts = _counts(os.path.join(self._folder(execution), "memory.oom_control"))
        return counts.get("oom_kill", 0) > 0


def detect() -> CgroupTree | None:
    """A memory cgroup tree this process may write: v2 where mounted, else v1; or None."""
    return CgroupTree.detect() or CgroupV1.detect()


def sweep_stale(here: Path) -> None:
    """Remove the empty ``odop-<pid>`` folders of engines that are gone (killed before
    they could clean up); a folder still holding a process stays."""
    for folder in here.iterdir():
        match = _OURS.match(folder.name)
        if match is None or not folder.is_dir() or pid_alive(int(match[1])):
            continue
        for sub in folder.iterdir():
            if sub.is_dir():
                with contextlib.suppress(OSError):
                    os.rmdir(sub)
        with contextlib.suppress(OSError):
            os.rmdir(folder)



def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _counts(path: str) -> dict[str, int]:
    """A flat-keyed cgroup file (``name value`` per line) as a mapping; empty if unreadable."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return {}
    pairs = (line.split() for line in text.splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2 and p[1].isdigit()}


def _is_cgroup2(mountinfo: str, mount: str) -> bool:
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" in fields and fields[4] == mount:
            return fields[fields.index("-") + 1] == "cgroup2"
    return False


def _v1_memory_mount(mountinfo: str) -> tuple[str, str] | None:
    """(mount point, hierarchy path mounted there) of the v1 memory controller, or None."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        if fields[dash + 1] == "cgroup" and "memory" in fields[dash + 3].split(","):
            return fields[4], fields[3]
    return None


def _own_cgroup(proc_cgroup: str) -> str | None:
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:].strip()
    return None


def _own_v1(proc_cgroup: str) -> str | None:
    """This process's path in the v1 memory hierarchy (``N:memory:/path``), or None."""
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and "memory" in parts[1].split(","):
            return parts[2].strip()
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
