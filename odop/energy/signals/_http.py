"""A small HTTP GET on urllib (standard library only) with clear errors.

urllib.request and email are imported on first use: the scheduler imports every signal
provider, and most runs fetch nothing.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping

from odop.energy.errors import FetchError

USER_AGENT = "odop-energy/0.1"


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils

    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def build_url(base: str, path: str, params: Mapping[str, object] | None = None) -> str:
    """``base`` + ``path`` + an encoded query string."""
    url = base.rstrip("/") + "/" + path.lstrip("/") if path else base
    if params:
        url += "?" + urllib.parse.urlencode({k: str(v) for k, v in params.items()})
    return url


def http_get(provider: str, url: str, headers: Mapping[str, str] | None = None,
             timeout_s: float = 10.0) -> bytes:
    """The body of a GET; raises FetchError with the status and Retry-After on failure."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310
            return resp.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()[:200].decode("utf-8", "replace")
        raise FetchError(provider, body or exc.reason, exc.code,
                         retry_after_s(exc.headers.get("Retry-After"))) from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise FetchError(provider, f"no response from {url}: {exc}") from exc
