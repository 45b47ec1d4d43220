"""The Google part of a worker's tick: outbound event jobs, then inbound calendar syncs. Built once per
runtime; with no Google app configured (and no client injected) it does nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from automations.clock import Clock
from automations.google.connections import GoogleConnections, GoogleSettings
from automations.google.event_jobs import GoogleEventJobs
from automations.google.sync import GoogleSync
from automations.store.secrets_box import SecretsBox
from providers.google_calendar import GoogleCalendarClient


class GoogleWorker:
    def __init__(self, factory: sessionmaker[Session], settings: GoogleSettings, *, secret_key: str, owner: str,
                 lease_seconds: int = 120, clock: Clock | None = None,
                 client: GoogleCalendarClient | None = None) -> None:
        self.settings = settings
        if client is None and settings.configured:
            client = settings.client(clock=clock)
        self.connections = GoogleConnections(factory, client, SecretsBox(secret_key)) if client else None
        self.events = GoogleEventJobs(factory, self.connections, owner=owner, lease_seconds=lease_seconds)
        self.sync = GoogleSync(factory, self.connections, settings, owner=owner, lease_seconds=lease_seconds)

    def run(self, now: datetime) -> int:
        """Due event writes, then due calendar syncs; how many units of work were done."""
        return self.events.run_batch(now) + self.sync.run_batch(now)
