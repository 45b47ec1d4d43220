"""What work is due: one read-only query that tells a tick which kinds of work to run, and one that tells
the scheduler when the next piece comes due.

A tick used to try every kind in turn — five write transactions per round, and one more empty round to
learn it was done — which on SQLite also queued the worker for the writer lock the API's bookings need.
The probe reads instead (never waiting for a writer) with each claim's own conditions (the job modules'
``due_where`` and ``store.db.lease_free``, shared with their claims, so the two cannot drift); it may
say a kind is due when a claim then finds nothing (another worker took it), never the reverse.
Statements are built once (``functools.cache``), bound to ``now`` at each call.
"""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import ColumnElement, Select, bindparam, exists, func, or_, select
from sqlalchemy.orm import Session

from automations.google import event_jobs, sync
from automations.outbox import delivery
from automations.store.db import lease_free
from automations.store.models import (
    DomainEvent,
    Enrollment,
    GoogleCalendarSync,
    GoogleEventLink,
    Meeting,
    Message,
    ZoomConnection,
)
from automations.store.states import EnrollmentState, MeetingStatus, MessageStatus
from automations.zoom import meeting_jobs
from automations.zoom.connections import DISCONNECTING

#: The kinds of work of a tick, in the order a round runs them.
KINDS = ("events", "meetings", "enrollments", "deliveries", "google")
_LIVE = (EnrollmentState.ACTIVE, EnrollmentState.WAITING)


def enrollments_due(now: datetime | ColumnElement) -> tuple[ColumnElement[bool], ...]:
    """The enrollments due to run at ``now``; the runtime's claim and the probe share it."""
    return Enrollment.state.in_(_LIVE), Enrollment.wake_at <= now


@functools.cache
def _due_query(with_google: bool) -> Select:
    now = bindparam("now", type_=Message.due_at.type)
    checks = {
        "events": exists().where(DomainEvent.processed_at.is_(None)),
        # Meeting jobs, or a Zoom disconnect waiting for its meetings' deletions (finished after a batch).
        "meetings": or_(exists().where(*meeting_jobs.due_where(now), lease_free(Meeting, now)),
                        exists().where(ZoomConnection.status == DISCONNECTING)),
        "enrollments": exists().where(*enrollments_due(now)),
        "deliveries": exists().where(*delivery.due_where(now), lease_free(Message, now)),
    }
    if with_google:
        checks["google"] = or_(exists().where(*event_jobs.due_where(now), lease_free(GoogleEventLink, now)),
                               exists().where(*sync.due_where(now), lease_free(GoogleCalendarSync, now)))
    return select(*(check.label(kind) for kind, check in checks.items()))


def due_now(session: Session, now: datetime, *, with_google: bool) -> frozenset[str]:
    """The kinds of work (of :data:`KINDS`) with something to claim at ``now``."""
    row = session.execute(_due_query(with_google), {"now": now}).one()
    return frozenset(kind for kind, due in row._mapping.items() if due)


@functools.cache
def _next_query() -> Select:
    return select(
        exists().where(DomainEvent.processed_at.is_(None)).label("event"),
        select(func.min(Enrollment.wake_at)).where(Enrollment.state.in_(_LIVE)).scalar_subquery().label("enrollment"),
        select(func.min(Message.due_at)).where(Message.status == MessageStatus.PENDING)
        .scalar_subquery().label("message"),
        select(func.min(Meeting.next_attempt_at)).where(Meeting.status.in_((MeetingStatus.PENDING, meeting_jobs.DELETING)))
        .scalar_subquery().label("meeting"),
    )


def next_due(session: Session, now: datetime) -> datetime | None:
    """The earliest moment any work comes due (``now`` if an event is waiting), or None if none is scheduled."""
    event, *candidates = session.execute(_next_query()).one()
    if event:
        return now
    found = [c for c in candidates if c is not None]
    return min(found) if found else None
