"""Fixed-window request counters in the database, so every process (web servers, several hosts on one
PostgreSQL) shares one count: ``hit`` adds one to a bucket and says how many it holds in this window.

One statement per write (an upsert with RETURNING, the same SQL on SQLite ≥ 3.35 and PostgreSQL): no
read-then-write race between processes.

``BatchedCounts`` spares the hot path that write: a process counts its hits in memory and adds them to
the shared row in one upsert at most every ``SYNC_EVERY`` (and on every hit once a bucket is past half
its limit, where exactness matters). Within one process the count is exact; across processes a bucket
can run past its limit by what the others counted since their last sync (at most a second of traffic,
and below half the limit each), which is what a per-minute limit needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, text
from sqlalchemy.orm import Session

from automations.store.db import rowcount
from automations.store.models import RateLimitCounter

_HIT = text(
    "INSERT INTO rate_limit_counters (bucket, window_no, hits) VALUES (:bucket, :window, :n) "
    "ON CONFLICT (bucket) DO UPDATE SET "
    "hits = CASE WHEN rate_limit_counters.window_no = excluded.window_no "
    "THEN rate_limit_counters.hits + excluded.hits ELSE excluded.hits END, "
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


def hit(session: Session, bucket: str, *, now: datetime, window_seconds: int, n: int = 1) -> Count:
    """Count ``n`` more requests in ``bucket``'s current window."""
    window, left = _window(now, window_seconds)
    hits = session.execute(_HIT, {"bucket": bucket[:200], "window": window, "n": n}).scalar_one()
    return Count(hits, left)


def peek(session: Session | Connection, bucket: str, *, now: datetime, window_seconds: int) -> Count:
    """The bucket's count in the current window, without adding to it."""
    window, left = _window(now, window_seconds)
    hits = session.execute(_PEEK, {"bucket": bucket[:200], "window": window}).scalar()
    return Count(hits or 0, left)


def prune(session: Session, *, now: datetime, window_seconds: int) -> int:
    """Drop counters of past windows (called now and then; a stale one is only reset on its next hit)."""
    window, _ = _window(now, window_seconds)
    return rowcount(session.execute(delete(RateLimitCounter).where(RateLimitCounter.window_no < window))) or 0


#: How long a process may keep hits to itself before adding them to the shared count.
SYNC_EVERY = timedelta(seconds=1)


@dataclass
class _Tally:
    window: int
    synced: int = 0  # the shared count at the last sync (this process's hits included)
    pending: int = 0  # hits counted here since
    synced_at: datetime | None = None


class BatchedCounts:
    """Per-process hit counting for hot buckets, synced into the shared counters now and then (see the
    module docstring). ``write`` runs a function in a write transaction (``store.db.transaction``)."""

    def __init__(self, write: Callable[[Callable[[Session], int]], int], *, window_seconds: int) -> None:
        self._write = write
        self._window_seconds = window_seconds
        self._tallies: dict[str, _Tally] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str, *, now: datetime, limit: int) -> Count:
        """Count one request in ``bucket``; the count it makes (exact in this process)."""
        window, left = _window(now, self._window_seconds)
        with self._lock:
            tally = self._tallies.get(bucket)
            if tally is None or tally.window != window:
                if tally is not None or len(self._tallies) > 10_000:  # a new window: the old ones are over
                    self._tallies = {b: t for b, t in self._tallies.items() if t.window == window}
                tally = self._tallies[bucket] = _Tally(window)
            tally.pending += 1
            estimate = tally.synced + tally.pending
            due = (tally.synced_at is None or now - tally.synced_at >= SYNC_EVERY
                   or 2 * estimate >= limit)
            if not due:
                return Count(estimate, left)
            fresh = tally.synced_at is None
            taken, tally.pending, tally.synced_at = tally.pending, 0, now

        def sync(session: Session) -> int:
            if fresh:  # this process's first write in a new window: a cheap moment to drop past windows
                prune(session, now=now, window_seconds=self._window_seconds)
            return hit(session, bucket, now=now, window_seconds=self._window_seconds, n=taken).hits

        shared = self._write(sync)
        with self._lock:
            tally.synced = max(tally.synced, shared)
            return Count(tally.synced + tally.pending, left)
