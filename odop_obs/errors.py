"""The exception root of odop_obs (standalone: it does not import odop)."""

from __future__ import annotations


class ObsError(Exception):
    """Root of every error odop_obs raises on purpose."""


class ObsConfigError(ObsError, ValueError):
    """An observer option has a value that is not allowed; names the option and what is."""

    def __init__(self, option: str, value: object, allowed: str) -> None:
        self.option, self.value, self.allowed = option, value, allowed
        super().__init__(f"observer option {option!r} = {value!r} is invalid; allowed: {allowed}")


class SampleError(ObsError, ValueError):
    """A sample message that does not follow the schema in docs/observer.md."""


class UnknownProcessError(ObsError, LookupError):
    """A pid to watch that does not exist (or no longer does)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(f"process {pid} does not exist; watch a running pid")
