"""The meeting job: create, check and delete meetings at the provider, outside any transaction.

Due meetings are claimed under a lease, the provider is called, and the result recorded; a resolved (or
finally failed) meeting emits ``meeting.resolved`` so messages held for its link go. Three kinds of work:

* **create** — a pending meeting with no provider id yet;
* **verify** — a pending meeting that already has one: a new appointment joined it (same host, same slot),
  so the job checks it still exists before anyone is sent its link, and recreates it when the host deleted
  it at the provider (Zoom 404 / 3001). A check that cannot be made keeps the link it had;
* **delete** — a ``deleting`` meeting no appointment uses any more (a meeting already gone counts as deleted).

What the provider raises decides what happens (``automations.errors``): a spent daily budget defers the work to
``retry_at`` (the next 00:00 UTC) and tells the host once a day; a 429 waits for its Retry-After; a broken
credential marks the host's connection broken and alerts them; a host with no usable connection fails the
meeting for good (messages then follow the workflow's fallback policy); other retryable errors back off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import domain_events, meetings
from automations.errors import (
    MeetingConnectionBroken,
    MeetingDailyLimit,
    MeetingDeferred,
    MeetingNotFound,
    ProviderError,
)
from automations.retry import RetryPolicy
from automations.store.db import claimable
from automations.store.models import Appointment, Meeting
from automations.store.states import EventKind, MeetingStatus
from automations.zoom import connections as zoom_connections
from providers.base import MeetingInfo, MeetingProvider, MeetingRequest

log = logging.getLogger(__name__)
#: 5 s doubling to 10 min, 8 attempts; no jitter: one meeting per slot, nothing to spread out.
MEETING_RETRY = RetryPolicy(max_attempts=8, base_seconds=5, cap_seconds=600, jitter=0)
DELETING = meetings.DELETING
CREATE, VERIFY, DELETE = "create", "verify", "delete"


@dataclass(frozen=True)
class _Job:
    meeting_id: str
    kind: str
    host: str
    external_id: str | None
    join_url: str | None
    request: MeetingRequest
    foreign: bool  # made by another provider (e.g. the sandbox before Zoom was configured)


def due_where(now: datetime | ColumnElement) -> tuple[ColumnElement[bool], ...]:
    """The meeting jobs due at ``now`` (lease aside); the claim and the worker's due probe share it."""
    return (Meeting.status.in_((MeetingStatus.PENDING, DELETING)),
            or_(Meeting.next_attempt_at.is_(None), Meeting.next_attempt_at <= now))


class MeetingJobs:
    def __init__(self, factory: sessionmaker[Session], provider: MeetingProvider, *, owner: str,
                 lease_seconds: int = 120) -> None:
        self.factory = factory
        self.provider = provider
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)

    def run_batch(self, now: datetime, limit: int = 50) -> int:
        work = self._claim(now, limit)
        for job in work:
            kind, result = self._call(job)
            self._record(job, kind, result, now)
        housekeeping = getattr(self.provider, "housekeeping", None)
        if callable(housekeeping):
            try:
                housekeeping(now)
            except Exception:  # never let tidying up stop the meeting work
                log.exception("meeting provider housekeeping failed")
        return len(work)

    def midnight(self, now: datetime) -> int:
        """The 00:00 UTC hook: daily provider budgets start over, and the work deferred to this moment
        runs at once (rather than on the next tick)."""
        with self.factory() as session, session.begin():
            zoom_connections.reset_budgets(session, now)
        total = 0
        for _ in range(100):
            done = self.run_batch(now)
            total += done
            if not done:
                break
        return total

    # -- claim -------------------------------------------------------------------------------------

    def _claim(self, now: datetime, limit: int) -> list[_Job]:
        name = getattr(self.provider, "name", None)
        with self.factory() as session, session.begin():
            query = claimable(session, Meeting, *due_where(now), order_by=[Meeting.next_attempt_at], now=now, limit=limit)
            work = []
            for m in session.scalars(query):
                if m.host_user_id is None:  # attach() always sets one; the column allows NULL, a provider cannot
                    m.error = "the meeting has no host"
                    m.status = MeetingStatus.DELETED if m.status == DELETING else MeetingStatus.FAILED
                    if m.status == MeetingStatus.FAILED:
                        self._resolved(session, m, now)  # messages waiting on the link use the fallback
                    continue
                m.lease_owner, m.lease_expires_at = self.owner, now + self.lease
                appt = session.execute(
                    select(Appointment.id, Appointment.title, Appointment.timezone)
                    .where(Appointment.meeting_id == m.id).order_by(Appointment.created_at).limit(1)
                ).first()
                kind = DELETE if m.status == DELETING else (VERIFY if m.external_id else CREATE)
                foreign = bool(name) and m.provider != name
                if foreign and kind == CREATE and name:
                    m.provider, foreign = name, False  # nothing made yet: this provider makes it
                request = MeetingRequest(
                    host_user_id=m.host_user_id, topic=(appt.title if appt else None) or "Appointment",
                    start_at=m.start_at, duration_minutes=max(1, int((m.end_at - m.start_at).total_seconds() // 60)),
                    timezone=(appt.timezone if appt else None) or "UTC",
                    agenda=f"Punctual appointment {appt.id}" if appt else "",
                )
                work.append(_Job(m.id, kind, m.host_user_id, m.external_id, m.join_url, request, foreign))
        return work

    # -- call (no transaction open) ----------------------------------------------------------------

    def _call(self, job: _Job) -> tuple[str, object]:
        """Returns the kind of work actually done (a verify whose meeting is gone becomes a create) and its
        result: a MeetingInfo, None (deleted), or the ProviderError met."""
        kind = job.kind
        try:
            if kind == DELETE:
                if job.external_id and not job.foreign:  # never delete by another provider's id
                    self.provider.delete(job.host, job.external_id)
                return kind, None
            if kind == VERIFY and job.external_id:  # VERIFY is chosen only when there is one
                ensure = getattr(self.provider, "ensure", None)
                if job.foreign or not callable(ensure):
                    return kind, MeetingInfo(job.external_id, job.join_url or "")
                try:
                    return kind, ensure(job.host, job.external_id, job.request)
                except MeetingNotFound:
                    log.info("meeting %s is gone at the provider: recreating it", job.meeting_id)
                    kind = CREATE
            return kind, self.provider.create(job.request)
        except ProviderError as exc:
            return kind, exc

    # -- record ------------------------------------------------------------------------------------

    def _record(self, job: _Job, kind: str, result: object, now: datetime) -> None:
        with self.factory() as session, session.begin():
            m = session.get(Meeting, job.meeting_id)
            if m is None or m.lease_owner != self.owner:
                return
            m.lease_owner = m.lease_expires_at = None
            m.updated_at = now
            if job.kind != DELETE and m.status != MeetingStatus.PENDING:
                # Let go of while we called (cancelled, moved, the host disconnected): a meeting we just
                # made is no one's, so it goes too.
                if kind == CREATE and isinstance(result, MeetingInfo):
                    m.external_id, m.join_url = result.external_id, result.join_url
                    m.status, m.next_attempt_at = DELETING, now
                return
            if isinstance(result, MeetingConnectionBroken):
                zoom_connections.mark_broken(session, result.host_user_id or job.host, str(result), now)
            if kind == CREATE and job.kind == VERIFY:
                m.external_id = m.join_url = None  # the old meeting is gone at the provider
            if isinstance(result, ProviderError) and kind == VERIFY:
                # Could not check (rate limit, outage, connection trouble): keep the link we have.
                m.status, m.error = MeetingStatus.READY, f"could not verify: {result}"
                self._resolved(session, m, now)
                return
            if isinstance(result, MeetingDeferred) and result.retry_at is not None:
                m.next_attempt_at = result.retry_at
                m.error = f"deferred until {result.retry_at.isoformat()}: {result}"
                if isinstance(result, MeetingDailyLimit) and m.host_user_id:
                    zoom_connections.note_daily_limit(session, m.host_user_id, m.location_id, now, result.retry_at)
                return
            if isinstance(result, ProviderError):
                m.attempts += 1
                m.error = str(result)
                retry_at = MEETING_RETRY.next_attempt(m.attempts, now, result.retry_after) if result.retryable else None
                if retry_at is not None:
                    m.next_attempt_at = retry_at
                    return
                if job.kind == DELETE:
                    m.status = MeetingStatus.DELETED  # nothing more we can do; it is no longer ours
                    return
                m.status = MeetingStatus.FAILED
            elif job.kind == DELETE:
                m.status, m.error = MeetingStatus.DELETED, None
                return
            elif isinstance(result, MeetingInfo):
                m.status = MeetingStatus.READY
                m.external_id, m.join_url, m.error = result.external_id, result.join_url, None
            self._resolved(session, m, now)

    def _resolved(self, session: Session, m: Meeting, now: datetime) -> None:
        domain_events.emit(session, location_id=m.location_id, kind=EventKind.MEETING_RESOLVED, now=now,
                           meeting_id=m.id, status=m.status)
