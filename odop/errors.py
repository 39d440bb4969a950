"""The exception root of odop and its families."""

from __future__ import annotations


class OdopError(Exception):
    """Root of every error odop raises on purpose."""


class SpecError(OdopError, ValueError):
    """A task declaration is wrong: names the task, the field, the value and what is allowed."""

    def __init__(self, task: str, field: str, value: object, allowed: str) -> None:
        self.task, self.field, self.value, self.allowed = task, field, value, allowed
        super().__init__(
            f"task {task!r}: field {field!r} = {value!r} is invalid; allowed: {allowed}")


class SpecErrors(OdopError, ValueError):
    """Several spec errors found at once (loading a folder reports them all)."""

    def __init__(self, errors: list[SpecError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  - {e}" for e in errors)
        super().__init__(f"{len(errors)} invalid task declaration(s):\n{lines}")


class UnknownTaskError(OdopError, LookupError):
    """A task name that no declaration defines."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...] = ()) -> None:
        self.name = name
        hint = f"; known tasks: {', '.join(sorted(known))}" if known else ""
        super().__init__(f"unknown task {name!r}{hint}")


class ProtocolError(OdopError, ValueError):
    """A message that does not follow docs/protocol.md."""


class ConfigError(OdopError, ValueError):
    """A configuration key or value that is not allowed."""
