"""The grid-signal interface every provider implements.

Contract for a provider (one file per provider in this folder):

- ``current(now) -> SignalPoint``: the signal in force at unix time ``now`` (s).
- ``forecast(now, horizon_s) -> Forecast``: piecewise-constant slots covering at
  least [now, now + horizon_s) where the provider knows that far; the first slot is
  the one in force at ``now`` (it may have started before). Carbon intensity is in
  gCO2/kWh, price in ``Forecast.currency``/MWh; a provider fills what it knows.
- Both return instantly and never raise for a network problem: a remote provider
  reads the cache its background fetcher keeps (see ``remote.RemoteSignal``) and
  falls back to the last good forecast, else to its static fallback.
- ``status() -> SignalStatus``: where the values come from now, their age (s), the
  last error, and whether the provider is degraded (serving a fallback).
- ``name`` is a short label ('static', 'uk-carbon-intensity', ...) that every figure
  computed from this signal carries.

A provider is a class of the ``odop.plugins.GRID_PROVIDERS`` registry, chosen by its
``provider`` (the ``[energy] provider`` value); ``required`` names the ``[energy]`` keys
it needs, and ``from_settings(s, now=, fallback=, remote=, secret=)`` builds it from the
settings: ``fallback`` is the static signal of the settings, ``remote`` the keyword
arguments of a :class:`~odop.energy.signals.remote.RemoteSignal` (fallback, refresh,
timeout, base URL), ``secret(key, default)`` the value of the environment variable the
key names. A new provider is one module with one class and one ``register`` line.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from odop.energy.forecast import Forecast, SignalPoint


@dataclass(frozen=True)
class SignalStatus:
    """Health of a provider: ``serving`` is 'live', 'cached', 'fallback' or 'static'."""

    source: str
    serving: str
    age_s: float | None = None
    last_error: str | None = None
    degraded: bool = False
    failures: int = 0
    next_fetch_in_s: float | None = None


class SignalProvider(ABC):
    """A source of grid carbon intensity and/or price, now and forecast."""

    provider: ClassVar[str] = ""
    """Its name in ``[energy] provider``."""
    required: ClassVar[tuple[str, ...]] = ()
    """The ``[energy]`` keys it cannot do without."""

    @classmethod
    def from_settings(cls, s: Any, *, now: float, fallback: SignalProvider,
                      remote: dict[str, Any], secret: Callable[[str, str | None], str],
                      ) -> SignalProvider:
        """The provider the ``[energy]`` settings ``s`` describe."""
        raise NotImplementedError(f"provider {cls.provider!r} cannot be built from settings")

    name: str = "signal"

    @abstractmethod
    def current(self, now: float) -> SignalPoint:
        """The signal in force at ``now`` (unix s)."""

    @abstractmethod
    def forecast(self, now: float, horizon_s: float) -> Forecast:
        """Slots covering [now, now + horizon_s) as far as known (see module contract)."""

    def status(self) -> SignalStatus:
        """Health report; a local provider is always healthy."""
        return SignalStatus(source=self.name, serving="static")

    def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work, if any (idempotent)."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop background work, if any (idempotent)."""
