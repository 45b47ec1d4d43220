"""HTTP header helpers shared by every provider client: case-insensitive lookup and ``Retry-After``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Protocol

from automations.clock import Clock, SystemClock, ensure_utc


class HeaderItems(Protocol):
    """Request or response headers: a plain dict, httpx's or Werkzeug's header objects (all have ``items``)."""

    def items(self) -> Iterable[tuple[str, str]]: ...


def header(headers: HeaderItems | None, name: str) -> str | None:
    """The value of header ``name`` in any capitalisation (plain dicts, httpx/Werkzeug header objects)."""
    if not headers:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def parse_retry_after(value: str | None, clock: Clock | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds, an HTTP date, or an ISO-8601 instant (Zoom's
    daily-limit form). None when absent or unreadable; never negative, never infinite."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    when: datetime | None
    try:
        when = ensure_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, (when - (clock or SystemClock()).now()).total_seconds())
