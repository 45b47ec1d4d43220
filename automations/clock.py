"""Clocks. Logic never reads the time itself: it is handed ``now`` or a :class:`Clock`.

Every datetime in Punctual is timezone-aware UTC inside the engine; local time exists only at the
edges (rendering, wait windows, calendar arithmetic).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to: tests and benchmarks drive time with it."""

    def __init__(self, start: datetime) -> None:
        self._now = ensure_utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = ensure_utc(when)

    def advance(self, delta: timedelta | None = None, **kw: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kw)
        return self._now


def ensure_utc(value: datetime) -> datetime:
    """Aware UTC from an aware datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
