"""Outbound: every appointment written to its host's linked Google calendar, kept in step on change and
deleted on cancel — through a durable job row per appointment (``GoogleEventLink``).

Each handled appointment event bumps ``wanted_version`` (:func:`enqueue`, called by the engine in the
same transaction that handles the event). The worker claims due rows under a lease, calls Google
outside any transaction, and records the result; a worker that dies leaves the lease to run out and
another takes the row. Writes are idempotent: the event id is derived from the appointment
(``event_id_for``), so a repeated insert finds the event instead of making a second one; an update is a
patch of the fields we manage; a delete of an event already gone counts as done. The etag of our last
write is kept so the inbound sync recognises our own writes (no loops).

A write waits (briefly) while the appointment's meeting link is still being created, so the event
carries the link in its location and description.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import meetings
from automations.errors import NotFound
from automations.google.connections import ACTIVE, GoogleConnections
from automations.store.db import claimable
from automations.store.models import (
    Appointment,
    Calendar,
    CalendarMember,
    GoogleConnection,
    GoogleEventLink,
    Meeting,
)
from automations.store.states import AppointmentStatus
from providers.google_calendar import (
    EventDraft,
    GoogleConnectionBroken,
    GoogleError,
    GoogleNotFound,
    GoogleRetryableError,
    event_id_for,
)

log = logging.getLogger(__name__)
PENDING, SYNCED, DELETED, FAILED = "pending", "synced", "deleted", "failed"
INACTIVE = (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID)
#: How long a write waits for a pending meeting link before going without it.
LINK_WAIT = timedelta(minutes=10)
LINK_RECHECK = timedelta(seconds=15)
MAX_ATTEMPTS = 8


_CONNECTED = "google_connected_users"


def _connected_users(session: Session) -> frozenset[str]:
    """Users with an active Google connection, read once per session (a worker batch, a request): most
    hosts have none, and then an appointment needs no further query."""
    users = session.info.get(_CONNECTED)
    if users is None:
        users = session.info[_CONNECTED] = frozenset(
            session.scalars(select(GoogleConnection.user_id).where(GoogleConnection.status == ACTIVE)))
    return users


def target(session: Session, appt: Appointment) -> tuple[str, str] | None:
    """(user id, Google calendar id) the appointment belongs in: its host's linked calendar, if connected."""
    if not appt.assigned_user_id or appt.assigned_user_id not in _connected_users(session):
        return None
    member = session.scalar(select(CalendarMember).where(CalendarMember.calendar_id == appt.calendar_id,
                                                         CalendarMember.user_id == appt.assigned_user_id))
    if member is None or not member.google_calendar_id:
        return None
    conn = session.scalar(select(GoogleConnection.status).where(GoogleConnection.user_id == appt.assigned_user_id))
    return (appt.assigned_user_id, member.google_calendar_id) if conn == ACTIVE else None


def enqueue(session: Session, appt: Appointment, now: datetime, *, new: bool = False) -> GoogleEventLink | None:
    """The appointment changed: its Google event is due to be brought in step (or created). ``new``: the
    appointment was just booked, so it has no link yet (not looked up)."""
    link = None if new else session.get(GoogleEventLink, appt.id)
    if link is None:
        where = target(session, appt)
        if where is None or appt.status in INACTIVE or appt.record_past:
            return None
        link = GoogleEventLink(appointment_id=appt.id, user_id=where[0], google_calendar_id=where[1],
                               event_id=event_id_for(appt.id), wanted_version=0, written_version=0, attempts=0,
                               updated_at=now)
        session.add(link)
    link.wanted_version = (link.wanted_version or 0) + 1
    link.status, link.attempts, link.next_attempt_at, link.updated_at = PENDING, 0, now, now
    return link


@dataclass(frozen=True)
class _Job:
    appointment_id: str
    version: int
    user_id: str
    calendar_id: str
    event_id: str
    written: int
    move_to: tuple[str, str] | None  # the host or their linked calendar changed
    delete: bool
    draft: EventDraft | None


def _describe(appt: Appointment, calendar: Calendar | None, where: str) -> str:
    parts = [appt.notes or "", f"Join: {where}" if where.startswith("http") else where,
             (calendar.description if calendar else "") or "", "Booked with Punctual."]
    return "\n\n".join(p for p in parts if p)



def due_where(now: datetime | ColumnElement) -> tuple[ColumnElement[bool], ...]:
    """The event writes due at ``now`` (lease aside); the claim and the worker's due probe share it."""
    return GoogleEventLink.status == PENDING, GoogleEventLink.next_attempt_at <= now


class GoogleEventJobs:
    def __init__(self, factory: sessionmaker[Session], connections: GoogleConnections | None, *, owner: str,
                 lease_seconds: int = 120) -> None:
        self.factory = factory
        self.connections = connections
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)

    def run_batch(self, now: datetime, limit: int = 50) -> int:
        if self.connections is None:
            return 0
        jobs = self._claim(now, limit)
        for job in jobs:
            self._work(job, now)
        return len(jobs)

    def _claim(self, now: datetime, limit: int) -> list[_Job]:
        with self.factory() as session, session.begin():
            query = claimable(session, GoogleEventLink, *due_where(now),
                              order_by=[GoogleEventLink.next_attempt_at], now=now, limit=limit)
            jobs = []
            for link in session.scalars(query):
                job = self._job(session, link, now)
                if job is None:
                    continue
                link.lease_owner, link.lease_expires_at = self.owner, now + self.lease
                jobs.append(job)
            return jobs

    def _job(self, session: Session, link: GoogleEventLink, now: datetime) -> _Job | None:
        appt = session.get(Appointment, link.appointment_id)
        if appt is None:  # the appointment is gone: only our event is left to take out
            return _Job(link.appointment_id, link.wanted_version, link.user_id, link.google_calendar_id, link.event_id,
                        link.written_version, None, True, None)
        delete = appt.status in INACTIVE
        where_now = target(session, appt)
        move_to = where_now if where_now and where_now != (link.user_id, link.google_calendar_id) else None
        if where_now is None and not delete:
            delete = True  # unlinked or disconnected: take our event out of the old calendar
        draft = None
        if not delete:
            calendar = session.get(Calendar, appt.calendar_id)
            meeting = session.get(Meeting, appt.meeting_id) if appt.meeting_id else None
            where = meetings.current_location(appt, meeting, calendar)
            if where is None and now - appt.updated_at < LINK_WAIT:
                link.next_attempt_at = now + LINK_RECHECK  # the link is being made: write once it is known
                return None
            where = where or meetings.fallback_text(calendar)
            draft = EventDraft(appointment_id=appt.id, start=appt.start_at, end=appt.end_at, summary=appt.title,
                               version=link.wanted_version, timezone=appt.timezone, location=where,
                               description=_describe(appt, calendar, where))
        return _Job(appt.id, link.wanted_version, link.user_id, link.google_calendar_id, link.event_id,
                    link.written_version, move_to, delete, draft)

    def _work(self, job: _Job, now: datetime) -> None:
        assert self.connections is not None  # run_batch claims no jobs without them
        client = self.connections.client
        call = self.connections.call
        draft = job.draft  # None exactly when the event is to be deleted (see _job)
        etag: str | None = None
        try:
            if (job.delete or job.move_to) and job.written:
                call(job.user_id, lambda t: client.delete_event(t, job.calendar_id, job.event_id), now=now)
            if draft is not None:
                user, cal = job.move_to or (job.user_id, job.calendar_id)
                if job.written and not job.move_to:
                    try:
                        event = call(user, lambda t: client.patch_event(t, cal, job.event_id, draft), now=now)
                    except GoogleNotFound:
                        event = None  # deleted in Google: the inbound sync cancels the appointment
                else:
                    event = call(user, lambda t: client.insert_event(t, cal, draft, event_id=job.event_id),
                                 now=now).event
                etag = event.etag if event is not None else None
        except GoogleRetryableError as exc:
            self._retry(job, exc, now)
            return
        except (GoogleConnectionBroken, NotFound) as exc:
            self._finish(job, now, status=FAILED, error=getattr(exc, "message", str(exc)))
            return
        except GoogleError as exc:
            log.warning("Google event write for %s failed: %s", job.appointment_id, exc)
            self._finish(job, now, status=FAILED, error=exc.message)
            return
        self._finish(job, now, status=DELETED if job.delete else SYNCED, etag=etag)

    def _retry(self, job: _Job, exc: GoogleRetryableError, now: datetime) -> None:
        with self.factory() as session, session.begin():
            link = session.get(GoogleEventLink, job.appointment_id)
            if link is None or link.lease_owner != self.owner:
                return
            link.attempts += 1
            link.error = exc.message[:2000]
            if link.attempts >= MAX_ATTEMPTS:
                link.status = FAILED
            wait = exc.retry_after or min(3600, 10 * 2 ** (link.attempts - 1))
            link.next_attempt_at = now + timedelta(seconds=float(wait))
            link.lease_owner = link.lease_expires_at = None
            link.updated_at = now

    def _finish(self, job: _Job, now: datetime, *, status: str, etag: str | None = None, error: str | None = None) -> None:
        with self.factory() as session, session.begin():
            link = session.get(GoogleEventLink, job.appointment_id)
            if link is None or link.lease_owner != self.owner:
                return  # our lease ran out and someone else took it over
            if job.move_to:
                link.user_id, link.google_calendar_id = job.move_to
            if status in (SYNCED, DELETED):
                link.written_version = job.version if status == SYNCED else 0
                link.etag = etag if status == SYNCED else None
                # Changed again while we wrote: stay due for the newer version.
                link.status = PENDING if link.wanted_version > job.version else status
            else:
                link.status = status
            link.error = error
            link.attempts = 0 if status != FAILED else link.attempts
            link.lease_owner = link.lease_expires_at = None
            link.updated_at = now
