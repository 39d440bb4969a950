"""Time parsing shared by providers: ISO 8601 strings and unix seconds."""

from __future__ import annotations

from datetime import datetime, timezone

from odop.energy.errors import SignalError


def parse_time(value: object, provider: str = "signal") -> float:
    """Unix seconds from a number or an ISO 8601 string ('Z' or offset; naive = UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise SignalError(f"{provider}: time {value!r} is neither a number nor ISO 8601")
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SignalError(f"{provider}: time {value!r} is not ISO 8601") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def iso_utc(t: float, minutes: bool = True) -> str:
    """'YYYY-MM-DDTHH:MMZ' (or with seconds) in UTC."""
    fmt = "%Y-%m-%dT%H:%MZ" if minutes else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime(fmt)
