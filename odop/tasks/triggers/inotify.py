"""A minimal Linux inotify binding through ctypes (no third-party package).

``Inotify`` owns one non-blocking inotify descriptor: ``add_watch``, ``rm_watch`` and
``read`` (parses ``struct inotify_event`` records). ``available()`` says whether the
running system has inotify; callers fall back to polling when it does not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import struct
from typing import NamedTuple

__all__ = [
    "Inotify", "InotifyEvent", "available", "parse_events", "IN_MODIFY", "IN_ATTRIB",
    "IN_CLOSE_WRITE", "IN_MOVED_FROM", "IN_MOVED_TO", "IN_CREATE", "IN_DELETE", "IN_DELETE_SELF",
    "IN_MOVE_SELF", "IN_UNMOUNT", "IN_Q_OVERFLOW", "IN_IGNORED", "IN_ONLYDIR", "IN_ISDIR",
]

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000
_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len
_READ_SIZE = 64 * 1024


class InotifyEvent(NamedTuple):
    """One event: the watch descriptor, the IN_* mask bits and the entry name ('' for self)."""

    wd: int
    mask: int
    name: str


_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            lib.inotify_init1.argtypes = [ctypes.c_int]
            lib.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            lib.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
        except (OSError, AttributeError):
            return None
        _libc = lib
    return _libc


def available() -> bool:
    """True when an inotify descriptor can be created here (Linux with inotify)."""
    try:
        Inotify().close()
    except OSError:
        return False
    return True


class Inotify:
    """One non-blocking, close-on-exec inotify instance."""

    def __init__(self) -> None:
        lib = _lib()
        if lib is None:
            raise OSError(errno.ENOSYS, "inotify is not available (no libc inotify_init1)")
        self._lib = lib
        fd = lib.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self._fd = fd

    def fileno(self) -> int:
        """The descriptor: readable when events are queued."""
        return self._fd

    def add_watch(self, path: str, mask: int) -> int:
        """The watch descriptor for ``path``; OSError (ENOENT, ENOTDIR, ENOSPC...) otherwise."""
        wd = self._lib.inotify_add_watch(self._fd, os.fsencode(path), mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch({path!r}): {os.strerror(err)}", path)
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        """Stop a watch; a watch the kernel already dropped is ignored."""
        self._lib.inotify_rm_watch(self._fd, wd)

    def read(self) -> list[InotifyEvent]:
        """Every queued event (empty when none; never blocks)."""
        events: list[InotifyEvent] = []
        while True:
            try:
                data = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                return events
            if not data:
                return events
            events.extend(parse_events(data))

    def close(self) -> None:
        """Release the descriptor (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_events(data: bytes) -> list[InotifyEvent]:
    """Decode a buffer of ``struct inotify_event`` records."""
    events, pos = [], 0
    while pos + _HEADER.size <= len(data):
        wd, mask, _cookie, length = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        raw = data[pos:pos + length].split(b"\0", 1)[0]
        pos += length
        events.append(InotifyEvent(wd, mask, os.fsdecode(raw)))
    return events
