"""Rate limits for the API, counted in the database so all processes share them (``automations.store.
ratelimit``): failed authentications per client address, and calls per key and per client address.
Past a limit the answer is a 429 with ``Retry-After`` (seconds until the window ends).

Configured by environment variables (per minute; ``0`` turns a limit off); a bad value refuses to start,
naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from automations.errors import PunctualError

WINDOW_SECONDS = 60


class RateLimited(PunctualError):
    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


@dataclass(frozen=True)
class RateLimits:
    #: Failed authentications per client address per minute, after which every request from it is a 429.
    auth_failures: int = 20
    #: API calls per key per minute.
    per_key: int = 1200
    #: API calls per client address per minute (all keys together).
    per_address: int = 2400

    ENV = {"auth_failures": "PUNCTUAL_RATE_LIMIT_AUTH_FAILURES", "per_key": "PUNCTUAL_RATE_LIMIT_PER_KEY",
           "per_address": "PUNCTUAL_RATE_LIMIT_PER_ADDRESS"}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RateLimits:
        env = os.environ if env is None else env
        values = {}
        for attr, name in cls.ENV.items():
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                value = int(raw)
                if value < 0:
                    raise ValueError
            except ValueError:
                raise ValueError(f"{name} must be a whole number of requests per minute (0 = no limit), "
                                 f"not {raw!r}") from None
            values[attr] = value
        return cls(**values)


def exceeded(hits: int, limit: int) -> bool:
    return limit > 0 and hits > limit
