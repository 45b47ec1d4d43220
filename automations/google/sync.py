"""Inbound: what hosts do in Google comes back to Punctual.

For each linked Google calendar (``GoogleCalendarSync``), due when ``next_sync_at`` passes — at once
after a push notification (``/hooks/google``), else periodically — the worker runs an incremental sync
with the stored sync token (HTTP 410 → a full resync that replaces the local copy):

- events the host made in Google become ``BusyBlock`` rows, which block slots on booking pages and in
  round-robin assignment like any appointment (cancelled or "free" events remove them);
- events Punctual wrote (their private properties name the appointment) are compared with our last
  write: our own write (same etag, or unchanged managed fields) is ignored — no loops; a host's move is
  a reschedule and a host's delete a cancellation of the appointment, with ``modified_by = user``,
  through the booking domain functions, so triggers and the Zoom rules run as for any change. A move
  that breaks the rules (an overlap, the past) is not applied: the host is told, and our version is
  written back.

When ``PUNCTUAL_PUBLIC_URL`` is HTTPS each synced calendar also keeps a push channel (``events.watch``),
renewed a day before it expires; the periodic sync stays as a slow safety net.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import appointments
from automations.errors import Conflict, NotFound, ValidationError
from automations.google.connections import GoogleConnections, GoogleSettings
from automations.google.event_jobs import enqueue
from automations.store.db import claimable, table_of
from automations.store.models import (
    Appointment,
    BusyBlock,
    GoogleCalendarSync,
    GoogleEventLink,
    Notification,
    User,
)
from automations.store.states import AppointmentStatus, ModifiedBy
from providers.google_calendar import (
    GoogleConnectionBroken,
    GoogleError,
    GoogleEvent,
    GoogleRetryableError,
    GoogleSyncTokenExpired,
    SyncResult,
    WatchChannel,
    host_modified,
    is_own_write,
    new_channel_token,
)

log = logging.getLogger(__name__)
SOURCE = "google"
FREE_BUSY_SOURCE = "google_freebusy"
FREE_BUSY_AHEAD = timedelta(days=90)
FULL_SYNC_BACK = timedelta(days=30)
CHANNEL_RENEW_BEFORE = timedelta(days=1)
PUSH_SAFETY_NET = timedelta(hours=6)
INACTIVE = (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID)


def external_id(google_calendar_id: str, event_id: str) -> str:
    return f"{google_calendar_id}|{event_id}"[:300]


@dataclass(frozen=True)
class _Job:
    id: str
    user_id: str
    calendar_id: str
    sync_token: str | None
    channel_id: str | None
    channel_resource_id: str | None
    channel_expires_at: datetime | None



def due_where(now: datetime | ColumnElement) -> tuple[ColumnElement[bool], ...]:
    """The calendar syncs due at ``now`` (lease aside); the claim and the worker's due probe share it."""
    return (GoogleCalendarSync.next_sync_at <= now,)


class GoogleSync:
    def __init__(self, factory: sessionmaker[Session], connections: GoogleConnections | None,
                 settings: GoogleSettings, *, owner: str, lease_seconds: int = 120) -> None:
        self.factory = factory
        self.connections = connections
        self.settings = settings
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)

    def run_batch(self, now: datetime, limit: int = 20) -> int:
        if self.connections is None:
            return 0
        jobs = self._claim(now, limit)
        for job in jobs:
            self._sync(job, now)
        return len(jobs)

    def _claim(self, now: datetime, limit: int) -> list[_Job]:
        with self.factory() as session, session.begin():
            query = claimable(session, GoogleCalendarSync, *due_where(now),
                              order_by=[GoogleCalendarSync.next_sync_at], now=now, limit=limit)
            jobs = []
            for row in session.scalars(query):
                row.lease_owner, row.lease_expires_at = self.owner, now + self.lease
                jobs.append(_Job(row.id, row.user_id, row.google_calendar_id, row.sync_token, row.channel_id,
                                 row.channel_resource_id, row.channel_expires_at))
            return jobs

    @property
    def _connected(self) -> GoogleConnections:
        """The connections, for work on a claimed job (``run_batch`` claims none without them)."""
        assert self.connections is not None
        return self.connections

    # -- one calendar ------------------------------------------------------------------------------

    def _sync(self, job: _Job, now: datetime) -> None:
        client, call = self._connected.client, self._connected.call
        try:
            try:
                result = call(job.user_id, lambda t: client.sync_events(
                    t, job.calendar_id, job.sync_token, full_sync_time_min=now - FULL_SYNC_BACK), now=now)
            except GoogleSyncTokenExpired:
                log.info("Google sync token for %s expired: full resync", job.calendar_id)
                result = call(job.user_id, lambda t: client.sync_events(
                    t, job.calendar_id, None, full_sync_time_min=now - FULL_SYNC_BACK), now=now)
            channel = self._renew_channel(job, now)
            free_busy = self._other_busy(job, now)
        except (GoogleRetryableError, GoogleConnectionBroken, NotFound, GoogleError) as exc:
            self._failed(job, exc, now)
            return
        self._apply(job, result, channel, now, free_busy)

    def _other_busy(self, job: _Job, now: datetime) -> tuple[str, list[tuple[datetime, datetime]]] | None:
        """freeBusy of the user's primary Google calendar when another one is linked: its busy times block
        slots too (the linked calendar itself is read event by event, which tells our events apart)."""
        client, call = self._connected.client, self._connected.call
        primary = next((c for c in call(job.user_id, client.list_calendars, now=now) if c.primary), None)
        if primary is None or primary.id == job.calendar_id:
            return None
        found = call(job.user_id, lambda t: client.free_busy(t, [primary.id], now, now + FREE_BUSY_AHEAD), now=now)
        busy = found.get(primary.id)
        if busy is None or not busy.ok:
            return None  # unknown is not free: keep what we had
        return primary.id, [(b.start, b.end) for b in busy.busy]

    def _renew_channel(self, job: _Job, now: datetime) -> tuple[WatchChannel, str] | None:
        address = self.settings.push_address
        if address is None:
            return None
        if job.channel_id and job.channel_expires_at and job.channel_expires_at - now > CHANNEL_RENEW_BEFORE:
            return None
        client, call = self._connected.client, self._connected.call
        token = new_channel_token()
        channel = call(job.user_id, lambda t: client.watch_events(t, job.calendar_id, address=address, token=token,
                                                                  channel_id=str(uuid.uuid4())), now=now)
        old_id, old_resource = job.channel_id, job.channel_resource_id
        if old_id and old_resource:
            try:  # the old channel stops only once the new one exists: no gap
                call(job.user_id, lambda t: client.stop_channel(t, old_id, old_resource), now=now)
            except GoogleError:
                log.info("could not stop old Google channel %s (it expires on its own)", job.channel_id)
        return channel, token

    def _failed(self, job: _Job, exc: Exception, now: datetime) -> None:
        with self.factory() as session, session.begin():
            row = session.get(GoogleCalendarSync, job.id)
            if row is None or row.lease_owner != self.owner:
                return
            row.attempts += 1
            row.error = str(getattr(exc, "message", exc))[:2000]
            retry_after = getattr(exc, "retry_after", None)
            wait = retry_after or min(3600, 30 * 2 ** (row.attempts - 1))
            row.next_sync_at = now + timedelta(seconds=float(wait))
            row.lease_owner = row.lease_expires_at = None
            row.updated_at = now

    def _apply(self, job: _Job, result: SyncResult, channel: tuple[WatchChannel, str] | None, now: datetime,
               free_busy: tuple[str, list[tuple[datetime, datetime]]] | None = None) -> None:
        with self.factory() as session, session.begin():
            row = session.get(GoogleCalendarSync, job.id)
            if row is None or row.lease_owner != self.owner:
                return
            user = session.get(User, job.user_id)
            zone = ZoneInfo(user.timezone) if user and user.timezone else UTC
            if result.full:
                session.execute(table_of(BusyBlock).delete().where(
                    BusyBlock.user_id == job.user_id, BusyBlock.source == SOURCE,
                    BusyBlock.external_id.like(external_id(job.calendar_id, "") + "%")))
                session.flush()
            for event in result.events:
                link = self._link_for(session, job, event)
                if link is not None:
                    self._reflect(session, link, event, now)
                elif not event.appointment_id:
                    self._block(session, job, event, zone, now)
            if free_busy is not None:
                self._replace_free_busy(session, job.user_id, *free_busy, now)
            row.sync_token = result.next_sync_token
            row.attempts, row.error = 0, None
            if channel is not None:
                watch, token = channel
                row.channel_id, row.channel_resource_id = watch.id, watch.resource_id
                row.channel_token_enc = self._connected.box.encrypt(token)
                row.channel_expires_at = watch.expiration
            pushed = self.settings.push_address is not None and row.channel_id
            row.next_sync_at = now + (PUSH_SAFETY_NET if pushed else timedelta(minutes=self.settings.sync_minutes))
            row.lease_owner = row.lease_expires_at = None
            row.updated_at = now

    @staticmethod
    def _replace_free_busy(session: Session, user_id: str, calendar_id: str, busy: list, now: datetime) -> None:
        session.execute(table_of(BusyBlock).delete().where(
            BusyBlock.user_id == user_id, BusyBlock.source == FREE_BUSY_SOURCE))
        session.add_all(BusyBlock(user_id=user_id, source=FREE_BUSY_SOURCE, external_id=f"{calendar_id}|{i}"[:300],
                                  start_at=start, end_at=end, title="Busy (Google)", updated_at=now)
                        for i, (start, end) in enumerate(busy))

    # -- what an event means -----------------------------------------------------------------------

    def _block(self, session: Session, job: _Job, event: GoogleEvent, zone: tzinfo, now: datetime) -> None:
        key = external_id(job.calendar_id, event.id)
        block = session.scalar(select(BusyBlock).where(BusyBlock.user_id == job.user_id, BusyBlock.source == SOURCE,
                                                       BusyBlock.external_id == key))
        free = event.cancelled or (event.raw or {}).get("transparency") == "transparent"
        if event.start is not None and event.end is not None:
            start, end = event.start, event.end
        elif event.start_date is not None and event.end_date is not None:  # all day, in the host's zone
            start = datetime.combine(event.start_date, time(), zone).astimezone(UTC)
            end = datetime.combine(event.end_date, time(), zone).astimezone(UTC)
        else:
            free = True
        if free:
            if block is not None:
                session.delete(block)
            return
        if block is None:
            block = BusyBlock(user_id=job.user_id, source=SOURCE, external_id=key)
            session.add(block)
        block.start_at, block.end_at, block.title, block.updated_at = start, end, event.summary[:300], now

    @staticmethod
    def _link_for(session: Session, job: _Job, event: GoogleEvent) -> GoogleEventLink | None:
        """The appointment behind an event we wrote (a deleted event carries no properties: found by id)."""
        if event.appointment_id:
            link = session.get(GoogleEventLink, event.appointment_id)
            return link if link is not None and link.event_id == event.id else None
        return session.scalar(select(GoogleEventLink).where(GoogleEventLink.event_id == event.id,
                                                            GoogleEventLink.google_calendar_id == job.calendar_id))

    def _reflect(self, session: Session, link: GoogleEventLink, event: GoogleEvent, now: datetime) -> None:
        appt = session.get(Appointment, link.appointment_id)
        if appt is None or is_own_write(event, link.etag):
            return
        if event.cancelled:
            if appt.status not in INACTIVE:
                appointments.change_status(session, appt, AppointmentStatus.CANCELLED, modified_by=ModifiedBy.USER,
                                           now=now)
            link.written_version, link.etag = 0, None  # nothing of ours is left in Google
            return
        if not host_modified(event) or event.start is None or event.end is None:
            return
        if (event.start, event.end) == (appt.start_at, appt.end_at) or appt.status in INACTIVE:
            return
        try:
            with session.begin_nested():
                appointments.reschedule(session, appt, start_at=event.start, end_at=event.end,
                                        modified_by=ModifiedBy.USER, now=now, override_hours=True)
        except (Conflict, ValidationError) as exc:
            # The host's move breaks the rules: keep the appointment, say why, and put our event back.
            session.add(Notification(
                location_id=appt.location_id, user_id=link.user_id, created_at=now,
                title="A move in Google Calendar was not applied",
                body=f"'{appt.title}' was moved in Google Calendar, but {exc.message}. It stays at its booked "
                     "time, and the Google event has been put back."))
            enqueue(session, appt, now)


def mark_pushed(session: Session, channel_id: str, now: datetime) -> GoogleCalendarSync | None:
    """A verified push for this channel: its calendar syncs on the next tick."""
    row = session.scalar(select(GoogleCalendarSync).where(GoogleCalendarSync.channel_id == channel_id))
    if row is not None:
        row.next_sync_at = now
    return row
