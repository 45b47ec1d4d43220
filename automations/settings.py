"""Settings from environment variables, read once into a frozen object at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

from automations.db import DEFAULT_DATABASE_URL


def _float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    #: Seconds between worker ticks; due work is drained fully on every tick.
    tick_seconds: float = 0.5
    lease_seconds: int = 120
    batch_size: int = 500
    from_email: str = "reminders@punctual.invalid"
    #: Base URL the app is reached at (links in messages, provider callbacks).
    public_url: str = "http://127.0.0.1:5000"
    secret_key: str = "dev-only-not-secret"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            database_url=env.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            tick_seconds=_float("PUNCTUAL_TICK_SECONDS", 0.5),
            lease_seconds=int(_float("PUNCTUAL_LEASE_SECONDS", 120)),
            batch_size=int(_float("PUNCTUAL_BATCH_SIZE", 500)),
            from_email=env.get("PUNCTUAL_FROM_EMAIL", "reminders@punctual.invalid"),
            public_url=env.get("PUNCTUAL_PUBLIC_URL", "http://127.0.0.1:5000").rstrip("/"),
            secret_key=env.get("PUNCTUAL_SECRET_KEY", "dev-only-not-secret"),
        )
