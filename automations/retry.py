"""Retry policy: a small pure object that answers "again, when?" or "give up". Deliveries use the default
(jittered); meeting jobs their own, unjittered (``automations.zoom.meeting_jobs.MEETING_RETRY``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 10.0
    cap_seconds: float = 3600.0
    jitter: float = 0.2  # ± fraction, so a wave of failures does not retry in lockstep
    #: A provider's Retry-After is honoured up to this (a garbage value must not park a message for years).
    max_retry_after: float = 86400.0

    def next_attempt(self, attempts: int, now: datetime, retry_after: float | None = None,
                     rng: random.Random | None = None) -> datetime | None:
        """When to try again after ``attempts`` failed tries, or None to give up."""
        if attempts >= self.max_attempts:
            return None
        delay = min(self.cap_seconds, self.base_seconds * 2 ** (attempts - 1))
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        delay = delay * (1 + spread)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return now + timedelta(seconds=delay)
