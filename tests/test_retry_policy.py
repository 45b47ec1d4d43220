"""RetryPolicy, table-driven: exponential from the base, capped, jittered within bounds, Retry-After honoured
(up to a ceiling), and giving up after the last attempt."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from automations.retry import RetryPolicy

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=6, base_seconds=10, cap_seconds=60, jitter=0.2)


@pytest.mark.parametrize(("attempts", "retry_after", "low", "high"), [
    (1, None, 8, 12),  # 10 s ± 20 %
    (2, None, 16, 24),
    (3, None, 32, 48),
    (4, None, 48, 72),  # capped at 60 s, then jittered
    (5, None, 48, 72),
    (1, 30, 30, 30),  # Retry-After longer than the backoff wins
    (3, 5, 32, 48),  # shorter than the backoff: the backoff wins
    (1, 10**12, 86400, 86400),  # garbage Retry-After: at most a day
])
def test_backoff_table(attempts, retry_after, low, high):
    for seed in range(50):
        when = POLICY.next_attempt(attempts, NOW, retry_after, rng=random.Random(seed))
        assert NOW + timedelta(seconds=low) <= when <= NOW + timedelta(seconds=high)


def test_jitter_spreads_a_wave():
    delays = {POLICY.next_attempt(1, NOW, rng=random.Random(seed)) for seed in range(20)}
    assert len(delays) > 10


@pytest.mark.parametrize("attempts", [6, 7, 100])
def test_gives_up_after_the_last_attempt(attempts):
    assert POLICY.next_attempt(attempts, NOW) is None
