"""Errors of the energy package."""

from __future__ import annotations

from odop.errors import ConfigError, OdopError


class EnergyError(OdopError):
    """Root of errors raised by odop.energy."""


class SignalError(EnergyError):
    """A grid signal could not be fetched or parsed (names the provider and the cause)."""


class FetchError(SignalError):
    """An HTTP request failed; ``status`` is the HTTP code (None: no response)."""

    def __init__(self, provider: str, message: str, status: int | None = None,
                 retry_after_s: float | None = None) -> None:
        self.provider, self.status, self.retry_after_s = provider, status, retry_after_s
        code = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{provider}: {code}{message}")


class EnergyConfigError(ConfigError, EnergyError):
    """An energy option with a value that is not allowed."""
