"""The database rate-limit counter on both backends: one upsert per hit, counts per window, a new
window starts from one, and two sessions (two processes) share the count."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from automations.store import ratelimit

T0 = datetime(2026, 11, 2, 14, 0, 5, tzinfo=UTC)


def test_hits_count_per_window_and_are_shared(factory):
    with factory() as s, s.begin():
        assert ratelimit.hit(s, "k", now=T0, window_seconds=60).hits == 1
    with factory() as s, s.begin():  # another connection: the same count
        second = ratelimit.hit(s, "k", now=T0 + timedelta(seconds=10), window_seconds=60)
        assert (second.hits, second.retry_after) == (2, 45)
        assert ratelimit.peek(s, "k", now=T0, window_seconds=60).hits == 2
        assert ratelimit.hit(s, "other", now=T0, window_seconds=60).hits == 1
    with factory() as s, s.begin():
        assert ratelimit.hit(s, "k", now=T0 + timedelta(minutes=1), window_seconds=60).hits == 1  # new window
        assert ratelimit.peek(s, "other", now=T0 + timedelta(minutes=1), window_seconds=60).hits == 0
        assert ratelimit.prune(s, now=T0 + timedelta(minutes=1), window_seconds=60) == 1  # "other" was stale
