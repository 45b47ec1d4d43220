"""The meeting job: create and delete meetings at the provider, outside any transaction.

Pending meetings are claimed under a lease, the provider is called, and the result recorded; a
resolved (or finally failed) meeting emits ``meeting.resolved`` so messages held for its link go.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from automations import domain_events, meetings
from automations.db import is_postgres
from automations.errors import ProviderError
from automations.models import Appointment, Meeting
from automations.states import EventKind, MeetingStatus
from providers.base import MeetingProvider, MeetingRequest

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
DELETING = "deleting"


class MeetingJobs:
    def __init__(self, factory: sessionmaker[Session], provider: MeetingProvider, *, owner: str,
                 lease_seconds: int = 120) -> None:
        self.factory = factory
        self.provider = provider
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)

    def run_batch(self, now: datetime, limit: int = 50) -> int:
        with self.factory() as session, session.begin():
            query = (
                select(Meeting)
                .where(
                    Meeting.status.in_((MeetingStatus.PENDING, DELETING)),
                    or_(Meeting.next_attempt_at.is_(None), Meeting.next_attempt_at <= now),
                    or_(Meeting.lease_expires_at.is_(None), Meeting.lease_expires_at < now),
                )
                .order_by(Meeting.next_attempt_at)
                .limit(limit)
            )
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            work = []
            for m in session.scalars(query):
                m.lease_owner, m.lease_expires_at = self.owner, now + self.lease
                title = session.scalar(select(Appointment.title).where(Appointment.meeting_id == m.id).limit(1))
                work.append((m.id, m.status, m.host_user_id, m.external_id, MeetingRequest(
                    host_user_id=m.host_user_id, topic=title or "Appointment", start_at=m.start_at,
                    duration_minutes=max(1, int((m.end_at - m.start_at).total_seconds() // 60)), timezone="UTC",
                )))
        for meeting_id, status, host, external_id, request in work:
            try:
                if status == DELETING:
                    self.provider.delete(host, external_id)
                    result: object = None
                else:
                    result = self.provider.create(request)
            except ProviderError as exc:
                result = exc
            self._record(meeting_id, status, result, now)
        return len(work)

    def _record(self, meeting_id: str, status: str, result: object, now: datetime) -> None:
        with self.factory() as session, session.begin():
            m = session.get(Meeting, meeting_id)
            if m is None or m.lease_owner != self.owner:
                return
            m.lease_owner = m.lease_expires_at = None
            m.updated_at = now
            m.attempts += 1
            if isinstance(result, ProviderError):
                m.error = str(result)
                if result.retryable and m.attempts < MAX_ATTEMPTS:
                    wait = meetings.backoff(m.attempts)
                    if result.retry_after:
                        wait = max(wait, timedelta(seconds=result.retry_after))
                    m.next_attempt_at = now + wait
                    return
                if status == DELETING:
                    m.status = MeetingStatus.DELETED  # nothing more we can do; it is no longer ours
                    return
                m.status = MeetingStatus.FAILED
            elif status == DELETING:
                m.status = MeetingStatus.DELETED
                return
            else:
                m.status = MeetingStatus.READY
                m.external_id, m.join_url, m.error = result.external_id, result.join_url, None
            domain_events.emit(session, location_id=m.location_id, kind=EventKind.MEETING_RESOLVED, now=now,
                               meeting_id=m.id, status=m.status)
