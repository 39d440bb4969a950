"""Shared plumbing of path triggers: glob patterns and a directory watch that survives
the directory not existing yet, being deleted, or being re-created."""

from __future__ import annotations

import errno
import fnmatch
import os
import re

from odop.tasks.triggers.inotify import (
    IN_CREATE,
    IN_DELETE_SELF,
    IN_IGNORED,
    IN_MOVE_SELF,
    IN_MOVED_TO,
    IN_ONLYDIR,
    IN_Q_OVERFLOW,
    IN_UNMOUNT,
    Inotify,
    InotifyEvent,
)

__all__ = ["split_pattern", "name_matcher", "DirWatch"]

_MAGIC = re.compile(r"[*?\[]")


def split_pattern(pattern: str, base_dir: str) -> tuple[str, str]:
    """(absolute fixed folder, the rest of the glob) of ``pattern`` under ``base_dir``."""
    path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(pattern)))
    parts = path.split(os.sep)
    for i, part in enumerate(parts):
        if _MAGIC.search(part):
            return os.sep.join(parts[:i]) or os.sep, os.sep.join(parts[i:])
    return os.path.dirname(path), os.path.basename(path)


def name_matcher(pattern: str) -> re.Pattern[str]:
    """A compiled matcher for one path component (a leading '.' only matches a '.')."""
    regex = fnmatch.translate(pattern)
    if not pattern.startswith("."):
        regex = r"(?!\.)" + regex
    return re.compile(regex)


class DirWatch:
    """An inotify watch on ``directory``; until it exists, on its nearest existing ancestor.

    ``drain()`` returns the events of ``directory`` itself and whether a full rescan is
    needed (the watch was just established, the queue overflowed, the folder vanished).
    """

    def __init__(self, inotify: Inotify, directory: str, mask: int) -> None:
        self.inotify, self.directory, self.mask = inotify, directory, mask
        self.wd: int | None = None
        self._ancestor: tuple[int, str] | None = None
        self.ensure()

    def ensure(self) -> bool:
        """Watch ``directory`` if it exists now; True when the watch was just established."""
        if self.wd is not None:
            return False
        try:
            self.wd = self.inotify.add_watch(self.directory, self.mask | IN_ONLYDIR)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
                raise
            self._watch_ancestor()
            return False
        if self._ancestor is not None:
            self.inotify.rm_watch(self._ancestor[0])
            self._ancestor = None
        return True

    def _watch_ancestor(self) -> None:
        folder = os.path.dirname(self.directory)
        while folder != os.path.dirname(folder) and not os.path.isdir(folder):
            folder = os.path.dirname(folder)
        if self._ancestor is not None and self._ancestor[1] == folder:
            return
        if self._ancestor is not None:
            self.inotify.rm_watch(self._ancestor[0])
        wd = self.inotify.add_watch(folder, IN_CREATE | IN_MOVED_TO | IN_ONLYDIR)
        self._ancestor = (wd, folder)
        if os.path.isdir(self.directory):  # appeared while we were choosing the ancestor
            self.ensure()

    def drain(self) -> tuple[list[InotifyEvent], bool]:
        """Events inside ``directory`` since the last drain, and whether to rescan."""
        own: list[InotifyEvent] = []
        rescan = False
        for event in self.inotify.read():
            if event.mask & IN_Q_OVERFLOW:
                rescan = True
            elif event.wd == self.wd:
                if event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT):
                    if not event.mask & IN_IGNORED:
                        self.inotify.rm_watch(event.wd)
                    self.wd, rescan = None, True
                elif event.name:
                    own.append(event)
        if self.wd is None:
            rescan = self.ensure() or rescan
        return own, rescan
