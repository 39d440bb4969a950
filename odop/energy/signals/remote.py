"""Base of network providers: a background fetcher thread and a cache.

A scheduling cycle never waits on the network: ``current``/``forecast`` read the
last good forecast instantly. A daemon thread refreshes it every ``refresh_s``;
a 429 or 5xx (or no response) backs off exponentially from ``backoff_s`` up to
``backoff_max_s``, or longer when the server sends Retry-After. Without any good
forecast (or once it has run out) the static ``fallback`` answers, and ``status()``
reports the degradation.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable

from odop.energy.errors import FetchError, SignalError
from odop.energy.forecast import Forecast, SignalPoint
from odop.energy.signals.base import SignalProvider, SignalStatus
from odop.energy.signals.static import StaticSignal


class RemoteSignal(SignalProvider):
    """Subclasses implement ``fetch(now) -> Forecast`` (blocking, may raise SignalError)."""

    name = "remote"

    def __init__(self, *, fallback: SignalProvider | None = None, refresh_s: float = 900.0,
                 backoff_s: float = 30.0, backoff_max_s: float = 3600.0,
                 timeout_s: float = 10.0, clock: Callable[[], float] = time.time) -> None:
        self.fallback = fallback or StaticSignal()
        self.refresh_s, self.backoff_s, self.backoff_max_s = refresh_s, backoff_s, backoff_max_s
        self.timeout_s, self.clock = timeout_s, clock
        self._lock = threading.Lock()
        self._cache: Forecast | None = None
        self._fetched_at: float | None = None
        self._error: str | None = None
        self._failures = 0
        self._next_due = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def fetch(self, now: float) -> Forecast:
        """Fetch a fresh forecast from the network (blocking; raises SignalError)."""

    def refresh(self) -> bool:
        """One fetch attempt now (the thread's step; callable directly). True on success."""
        now = self.clock()
        try:
            fc = self.fetch(now)
        except SignalError as exc:
            self._record_failure(now, exc)
            return False
        with self._lock:
            self._cache, self._fetched_at, self._error, self._failures = fc, now, None, 0
            self._next_due = now + self.refresh_s
        return True

    def _record_failure(self, now: float, exc: SignalError) -> None:
        with self._lock:
            self._failures += 1
            self._error = str(exc)
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** (self._failures - 1))
            if isinstance(exc, FetchError) and exc.retry_after_s is not None:
                delay = max(delay, exc.retry_after_s)
            self._next_due = now + delay

    def backoff_delay_s(self) -> float:
        """Seconds until the next planned fetch (0 when due)."""
        with self._lock:
            return max(0.0, self._next_due - self.clock())

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"odop-{self.name}",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 1)
            self._thread = None

    def wake(self) -> None:
        """Ask the thread to fetch now, ignoring the refresh period (not the backoff)."""
        with self._lock:
            if self._failures == 0:
                self._next_due = 0.0
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            delay = self.backoff_delay_s()
            if delay > 0:
                self._wake.wait(min(delay, 60.0))
                self._wake.clear()
                continue
            self.refresh()

    def _usable(self, now: float) -> Forecast | None:
        with self._lock:
            fc = self._cache
        if fc is None or fc.end <= now:
            return None
        return fc

    def current(self, now: float) -> SignalPoint:
        fc = self._usable(now)
        return fc.point(now) if fc is not None else self.fallback.current(now)

    def forecast(self, now: float, horizon_s: float) -> Forecast:
        fc = self._usable(now)
        if fc is None:
            return self.fallback.forecast(now, horizon_s)
        return fc.window(now, now + horizon_s)

    def status(self) -> SignalStatus:
        now = self.clock()
        fc = self._usable(now)
        with self._lock:
            age = None if self._fetched_at is None else now - self._fetched_at
            failing = self._failures > 0
            serving = "fallback" if fc is None else "cached" if failing else "live"
            return SignalStatus(self.name, serving, age, self._error,
                                degraded=failing or fc is None, failures=self._failures,
                                next_fetch_in_s=max(0.0, self._next_due - now))
