"""Keeping odop's own processes alive without ever holding the simulation up.

A :class:`Keeper` owns one daemon a rank started (the scheduler on rank 0, the agent on a
node leader). ``check()`` is called at ``submit``/``stop``: it costs one ``waitpid`` while the
daemon lives and, when it is dead, respawns it at most once per ``RESPAWN_EVERY_S`` seconds
and at most ``MAX_RESPAWNS`` times. A respawned scheduler recovers from the run's SQLite
database; a respawned agent says hello again under the same node id.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable

log = logging.getLogger("odop")
RESPAWN_EVERY_S = 2.0
"""Shortest time between two respawns of the same daemon (seconds)."""
MAX_RESPAWNS = 10


class Keeper:
    """One daemon process and the recipe to start it again."""

    def __init__(self, role: str, spawn: Callable[[], subprocess.Popen],
                 diagnose: Callable[[int | None], str | None] | None = None) -> None:
        self.role, self._spawn, self._diagnose = role, spawn, diagnose
        self.proc: subprocess.Popen | None = spawn()
        self.respawns = 0
        self._last = time.monotonic()
        self.on_respawn: Callable[[], None] | None = None
        self.gave_up: str | None = None
        """Why the daemon is started no more (a restart would not mend it), once known."""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self, *, force: bool = False) -> bool:
        """True when the daemon runs (respawning it if allowed); never blocks for long."""
        if self.alive():
            return True
        if self.gave_up is not None:
            return False
        code = self.proc.returncode if self.proc is not None else None
        why = self._diagnose(code) if self._diagnose is not None else None
        if why is not None:
            self.gave_up = why
            log.warning("odop: the %s stopped: %s. It is not started again; the simulation "
                        "runs on without it.", self.role, why)
            return False
        now = time.monotonic()
        if self.respawns >= MAX_RESPAWNS or (not force and now - self._last < RESPAWN_EVERY_S):
            return False
        self._last = now
        self.respawns += 1
        log.warning("odop: %s exited (%s); starting it again (%d)", self.role, code,
                    self.respawns)
        try:
            self.proc = self._spawn()
        except OSError as exc:
            log.warning("odop: cannot restart the %s: %s", self.role, exc)
            self.proc = None
            return False
        if self.on_respawn is not None:
            self.on_respawn()
        return True
