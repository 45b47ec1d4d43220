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


def _counts(factory, writes: list[int]) -> ratelimit.BatchedCounts:
    def write(work):
        writes.append(1)
        with factory() as s, s.begin():
            return work(s)
    return ratelimit.BatchedCounts(write, window_seconds=60)


def test_batched_counts_write_once_a_second_below_half_the_limit_and_every_hit_above(factory):
    writes: list[int] = []
    counts = _counts(factory, writes)
    # 100 hits in the same second, limit 1000: exact counts, one write (the first).
    assert [counts.hit("b", now=T0, limit=1000).hits for _ in range(100)] == list(range(1, 101))
    assert len(writes) == 1
    # A second later the pending hits reach the shared row in one write.
    assert counts.hit("b", now=T0 + timedelta(seconds=1), limit=1000).hits == 101
    assert len(writes) == 2
    with factory() as s:
        assert ratelimit.peek(s, "b", now=T0, window_seconds=60).hits == 101
    # Past half the limit every hit is written: another process's hits are seen at once.
    other = _counts(factory, [])
    for _ in range(400):
        other.hit("b", now=T0 + timedelta(seconds=2), limit=1000)
    before = len(writes)
    assert counts.hit("b", now=T0 + timedelta(seconds=1), limit=1000).hits == 102  # below half: not synced yet
    for _ in range(397):
        counts.hit("b", now=T0 + timedelta(seconds=1), limit=1000)
    assert counts.hit("b", now=T0 + timedelta(seconds=1), limit=1000).hits == 900  # 101 + 400 + 399: synced at half
    assert len(writes) > before


def test_batched_counts_start_again_in_a_new_window(factory):
    counts = _counts(factory, [])
    for _ in range(5):
        counts.hit("w", now=T0, limit=10)
    assert counts.hit("w", now=T0 + timedelta(minutes=1), limit=10).hits == 1
