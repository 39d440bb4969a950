"""Bounds on what a task may write to its stdout and stderr files.

A task writes its output straight to ``<run>/tasks/<id>/stdout`` and ``stderr`` (opened
with O_APPEND; nothing of odop reads a pipe, so a task never blocks on its output). Each
file keeps its first ``head`` and its last ``tail`` bytes: the engine looks at the files'
sizes at most every ``CHECK_S`` seconds and, once a file has grown past ``head + tail``
(plus ``SLACK`` bytes, so that it does not cut at every look), it frees the middle while
the task runs, punching a hole (``fallocate(PUNCH_HOLE)``: the file keeps its apparent
size, its blocks are given back). When the task has ended the file is rewritten as its
head, a line saying how many bytes were cut, and its tail. The disk a file holds is thus
at most ``head + tail + SLACK`` plus what the task writes in one check period.

Where the file system cannot punch holes, the middle is cut by truncating the file back to
its head: the task's next write lands after it (O_APPEND), so the tail kept is what the
task wrote since the last cut (at most ``tail + SLACK`` bytes).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from collections.abc import Callable

from odop.procs import libc

CHECK_S = 0.25
"""Seconds between two looks at a running task's output sizes."""
SLACK = 1 << 20
"""Bytes a file may grow past head + tail before its middle is cut."""
CHUNK = 1 << 20
"""Bytes copied at once when the final file is written."""
_PUNCH = 0x01 | 0x02  # FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE


def _load_fallocate() -> Callable[[int, int, int], None] | None:
    try:
        fallocate = libc().fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    fallocate.restype = ctypes.c_int

    def punch(fd: int, offset: int, length: int) -> None:
        if fallocate(fd, _PUNCH, offset, length) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))

    return punch


PUNCH = _load_fallocate()
"""``punch(fd, offset, length)``: free that range of a file (bytes); None without glibc."""


class CappedFile:
    """One output file of a running task, kept to ``head`` + ``tail`` bytes."""

    def __init__(self, path: str, name: str, head: int, tail: int,
                 punch: Callable[[int, int, int], None] | None = PUNCH) -> None:
        self.path, self.name, self.head, self.tail = path, name, head, tail
        self.punch = punch
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self.cut_to = head
        """Bytes before this offset and after the head are gone (a hole, or truncated)."""
        self.cut = 0
        """Bytes cut so far."""

    def check(self) -> None:
        """Cut the middle if the file has grown past its bound (see the module docstring)."""
        size = os.fstat(self.fd).st_size
        if size - self.cut_to <= self.tail + SLACK:
            return
        end = size - self.tail
        if self.punch is not None:
            try:
                self.punch(self.fd, self.cut_to, end - self.cut_to)
                self.cut += end - self.cut_to
                self.cut_to = end
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                self.punch = None  # this file system cannot: truncate from now on
        os.ftruncate(self.fd, self.head)
        self.cut += size - self.cut_to
        self.cut_to = self.head

    def finish(self) -> int:
        """Once the task has ended: rewrite the file as head, a note, tail; close it.
        Returns the bytes cut in all."""
        try:
            size = os.fstat(self.fd).st_size
            if size - self.cut_to > self.tail:
                self.cut += size - self.tail - self.cut_to
                self.cut_to = size - self.tail
            if self.cut:
                self._rewrite(size)
        finally:
            os.close(self.fd)
        return self.cut

    def _rewrite(self, size: int) -> None:
        note = (f"\n[odop: {self.cut} bytes of {self.name} cut here; kept the first "
                f"{self.head} and the last {size - self.cut_to} bytes (output_max_bytes)]\n")
        tmp = f"{self.path}.cut"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _copy(self.fd, out, 0, min(self.head, size))
            os.write(out, note.encode())
            _copy(self.fd, out, self.cut_to, size - self.cut_to)
        finally:
            os.close(out)
        os.replace(tmp, self.path)


class OutputCap:
    """The stdout and stderr of one execution, each kept to ``max_bytes`` (half head,
    half tail)."""

    def __init__(self, folder: str, max_bytes: int) -> None:
        head = max_bytes // 2
        self.files = [CappedFile(os.path.join(folder, name), name, head, max_bytes - head)
                      for name in ("stdout", "stderr")]

    def check(self) -> None:
        for f in self.files:
            with contextlib.suppress(OSError):  # a full disk must not stop the agent
                f.check()

    def finish(self) -> int:
        """Rewrite both files if cut; the bytes cut from both, in all."""
        cut = 0
        for f in self.files:
            try:
                cut += f.finish()
            except OSError:
                cut += f.cut
        return cut


def _copy(src: int, dst: int, offset: int, count: int) -> None:
    """Copy ``count`` bytes of ``src`` from ``offset`` to the end of ``dst``."""
    while count > 0:
        data = os.pread(src, min(CHUNK, count), offset)
        if not data:
            return
        os.write(dst, data)
        offset += len(data)
        count -= len(data)
