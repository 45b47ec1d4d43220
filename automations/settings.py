"""Settings from environment variables, read once into a frozen object at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass

from automations.store.db import DEFAULT_DATABASE_URL


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
    #: Email over SMTP (smtp://, smtps://, smtp+starttls://); unset = capture.
    smtp_url: str | None = None
    #: Twilio (SMS, voice); unset = capture.
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    #: Zoom OAuth app; unset = the offline meeting sandbox.
    zoom_client_id: str | None = None
    zoom_client_secret: str | None = None
    zoom_webhook_secret: str | None = None
    zoom_api_base: str = "https://api.zoom.us/v2"
    zoom_oauth_base: str = "https://zoom.us"
    #: Finished work (enrollments, their logs and messages; processed domain events) is deleted this
    #: many days after it finished, daily at 03:00 UTC; 0 keeps everything.
    retention_days: int = 90
    #: Rows of each kind deleted per retention transaction (short transactions, short locks).
    retention_batch: int = 1000

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
            smtp_url=env.get("SMTP_URL") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_from_number=env.get("TWILIO_FROM_NUMBER") or None,
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            twilio_base_url=env.get("TWILIO_BASE_URL", "https://api.twilio.com").rstrip("/"),
            zoom_client_id=env.get("ZOOM_CLIENT_ID") or None,
            zoom_client_secret=env.get("ZOOM_CLIENT_SECRET") or None,
            zoom_webhook_secret=env.get("ZOOM_WEBHOOK_SECRET_TOKEN") or None,
            zoom_api_base=env.get("ZOOM_API_BASE", "https://api.zoom.us/v2").rstrip("/"),
            zoom_oauth_base=env.get("ZOOM_OAUTH_BASE", "https://zoom.us").rstrip("/"),
            retention_days=int(_float("PUNCTUAL_RETENTION_DAYS", 90)),
            retention_batch=max(1, int(_float("PUNCTUAL_RETENTION_BATCH", 1000))),
        )
