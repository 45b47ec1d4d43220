"""Fixed-window request counters in the database, so every process (web servers, several hosts on one
PostgreSQL) shares one count: ``hit`` adds one to a bucket and says how many it holds in this window.

One statement per hit (an upsert with RETURNING, the same SQL on SQLite ≥ 3.35 and PostgreSQL): no
read-then-write race between processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from automations.store.db import rowcount
from automations.store.models import RateLimitCounter

_HIT = text(
    "INSERT INTO rate_limit_counters (bucket, window_no, hits) VALUES (:bucket, :window, 1) "
    "ON CONFLICT (bucket) DO UPDATE SET "
    "hits = CASE WHEN rate_limit_counters.window_no = excluded.window_no THEN rate_limit_counters.hits + 1 ELSE 1 END, "
    "window_no = excluded.window_no "
    "RETURNING hits"
)
_PEEK = text("SELECT hits FROM rate_limit_counters WHERE bucket = :bucket AND window_no = :window")


@dataclass(frozen=True)
class Count:
    hits: int
    #: Seconds until this window ends (when the count starts again from zero).
    retry_after: int


def _window(now: datetime, seconds: int) -> tuple[int, int]:
    epoch = int(now.timestamp())
    return epoch // seconds, seconds - epoch % seconds


def hit(session: Session, bucket: str, *, now: datetime, window_seconds: int) -> Count:
    """Count one more request in ``bucket``'s current window."""
    window, left = _window(now, window_seconds)
    hits = session.execute(_HIT, {"bucket": bucket[:200], "window": window}).scalar_one()
    return Count(hits, left)


def peek(session: Session, bucket: str, *, now: datetime, window_seconds: int) -> Count:
    """The bucket's count in the current window, without adding to it."""
    window, left = _window(now, window_seconds)
    hits = session.execute(_PEEK, {"bucket": bucket[:200], "window": window}).scalar()
    return Count(hits or 0, left)


def prune(session: Session, *, now: datetime, window_seconds: int) -> int:
    """Drop counters of past windows (called now and then; a stale one is only reset on its next hit)."""
    window, _ = _window(now, window_seconds)
    return rowcount(session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_no < window))) or 0
