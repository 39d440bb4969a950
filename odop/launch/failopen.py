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
from typing import Any

log = logging.getLogger("odop")
RESPAWN_EVERY_S = 2.0
"""Shortest time between two respawns of the same daemon (seconds)."""
MAX_RESPAWNS = 10
EARLY_S = 5.0
"""A daemon that exits this soon after its start (seconds) did not start at all."""
MAX_EARLY = 3
"""Early exits in a row after which a daemon is started no more."""
Diagnose = Callable[[int | None, int], "str | None"]
"""(exit code, early exits in a row) -> why the daemon must not be restarted, or None."""


class Keeper:
    """One daemon process and the recipe to start it again."""

    def __init__(self, role: str, spawn: Callable[[], subprocess.Popen],
                 diagnose: Diagnose | None = None) -> None:
        self.role, self._spawn, self._diagnose = role, spawn, diagnose
        self.proc: subprocess.Popen | None = spawn()
        self.respawns = 0
        self.early = 0
        """Exits in a row within EARLY_S of the daemon's start."""
        self._last = time.monotonic()
        self.on_respawn: Callable[[], None] | None = None
        self.gave_up: str | None = None
        """Why the daemon is started no more (a restart would not mend it), once known."""
        self._counted = False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check(self, *, force: bool = False) -> bool:
        """True when the daemon runs (respawning it if allowed); never blocks for long."""
        if self.alive():
            return True
        if self.gave_up is not None:
            return False
        code = self.proc.returncode if self.proc is not None else None
        if not self._counted:  # once an exit: what follows costs one comparison a call
            self._counted = True
            if self._gives_up(code):
                return False
        now = time.monotonic()
        if self.respawns >= MAX_RESPAWNS:
            self.gave_up = f"it exited {MAX_RESPAWNS + 1} times"
            return False
        if not force and now - self._last < RESPAWN_EVERY_S:
            return False
        self._last = now
        self._counted = False
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

    def _gives_up(self, code: int | None) -> bool:
        """Count an exit soon after the start, and ask the diagnosis (once an exit: it may
        look at the run folder's file system) whether a restart could mend it."""
        failed = code is not None and code > 0  # a signal is someone else's doing
        self.early = self.early + 1 if failed and time.monotonic() - self._last < EARLY_S else 0
        why = self._diagnose(code, self.early) if self._diagnose is not None else None
        if why is not None:
            self.gave_up = why
            log.warning("odop: the %s stopped: %s. It is not started again; the simulation "
                        "runs on without it.", self.role, why)
        return why is not None


PING_S = 2.0
"""Seconds between a waiting rank's signs-of-life requests to the scheduler."""


class Watchdog:
    """While a rank waits on the scheduler (the drain): pings it, and once it has been
    silent ``silence_s`` seconds takes it for hung. A hung scheduler this rank started is
    killed (its keeper then starts another, which resumes from the database); one started
    elsewhere is given up. Call it as the ``alive`` test of a wait."""

    def __init__(self, client: Any, keeper: Keeper | None, silence_s: float) -> None:
        self.client, self.keeper, self.silence_s = client, keeper, silence_s
        self._since = self._pinged = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._pinged >= PING_S:
            self._pinged = now
            self.client.ping()
        silent = now - max(self.client.heard_at, self._since)
        if silent < self.silence_s:
            return True
        self._since = now  # a restarted scheduler gets the same time to answer
        log.warning("odop: the scheduler has not answered for %.0f s; %s", silent,
                    "killing it (it is started again)" if self._ours() else "giving it up")
        if self._ours():
            assert self.keeper is not None and self.keeper.proc is not None
            self.keeper.proc.kill()
            self.keeper.proc.wait()
        return False

    def _ours(self) -> bool:
        return self.keeper is not None and self.keeper.alive()
