"""A run folder that takes no more writes: how odop's processes recognise it and say it.

A full or read-only run folder (a quota on the shared file system is common on clusters)
is not a fault a restart mends: the daemon that meets it exits with ``EXIT_STORAGE`` and
the rank that keeps it (odop/launch/failopen.py) says why once and starts it no more.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from odop.tasks.units import format_memory

EXIT_STORAGE = 73
"""Exit status of a daemon whose run folder cannot be written (sysexits' EX_CANTCREAT)."""
ROOM_BYTES = 256 * 1024
"""Free space below which a daemon's failure is taken for the run folder's (bytes)."""
_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS}
_SQLITE = ("disk is full", "readonly database", "disk I/O error")


def storage_error(exc: BaseException) -> bool:
    """True when ``exc`` means the file system takes no more writes (full, over quota,
    read-only), as an OSError or as SQLite's own words for it."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in _ERRNOS:
            return True
        if isinstance(exc, sqlite3.OperationalError) and any(w in str(exc) for w in _SQLITE):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def no_room(folder: Path) -> bool:
    """True when ``folder`` is read-only or has less than ``ROOM_BYTES`` free."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return bool(st.f_flag & os.ST_RDONLY) or st.f_bavail * st.f_frsize < ROOM_BYTES


def describe(folder: Path) -> str:
    """The folder's state in words: read-only, or its free space of its size."""
    try:
        st = os.statvfs(folder)
    except OSError as exc:
        return f"{folder}: {exc.strerror}"
    if st.f_flag & os.ST_RDONLY:
        return f"{folder} is on a read-only file system"
    free, size = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
    return f"{folder} has {format_memory(free)} free of {format_memory(size)}"

