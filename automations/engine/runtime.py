"""The runtime: everything a worker does, as methods that take ``now``.

``run_due(now)`` drains all due work synchronously (tests and benchmarks drive it with a frozen
clock); the scheduler (``automations/scheduler.py``) calls the same methods on a timer. Every
handoff goes through the database, so any number of runtimes may run at once.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import appointments
from automations.clock import Clock, SystemClock
from automations.engine import events, interpreter
from automations.google.connections import GoogleSettings
from automations.google.worker import GoogleWorker
from automations.outbox.delivery import Delivery, Senders
from automations.runs import enrollments
from automations.settings import Settings
from automations.store.db import is_postgres
from automations.store.models import (
    Appointment,
    Contact,
    DomainEvent,
    Enrollment,
    Location,
    Meeting,
    Message,
    WorkflowVersion,
)
from automations.store.states import EnrollmentState, MeetingStatus, MessageStatus
from automations.zoom.meeting_jobs import MeetingJobs
from providers.base import MeetingProvider
from providers.capture import CaptureEmail, CaptureSms, CaptureVoice
from providers.sandbox_meetings import SandboxMeetings

log = logging.getLogger(__name__)


@dataclass
class Providers:
    email: object = field(default_factory=CaptureEmail)
    sms: object = field(default_factory=CaptureSms)
    meetings: MeetingProvider = field(default_factory=SandboxMeetings)
    #: Calls and voicemail drops (Twilio Voice, or capture).
    voice: object = field(default_factory=CaptureVoice)
    #: Webhook and Slack steps (``providers.http_actions``); None = a default httpx sender made on first use.
    webhook: object | None = None
    slack: object | None = None
    #: Google Calendar (``providers.google_calendar.GoogleCalendarClient``); None = from GOOGLE_* settings, if set.
    google: object | None = None


def _cause(enrollment: Enrollment) -> str:
    return "due" if enrollment.state == EnrollmentState.WAITING else "run"


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Runtime:
    def __init__(self, factory: sessionmaker[Session], *, clock: Clock | None = None,
                 providers: Providers | None = None, settings: Settings | None = None, owner: str | None = None) -> None:
        self.factory = factory
        self.clock = clock or SystemClock()
        self.settings = settings or Settings()
        if providers is None:
            from providers.factory import build

            providers = build(self.settings, factory, clock=self.clock)
        self.providers = providers
        self.owner = owner or worker_id()
        p = self.providers
        self.delivery = Delivery(
            factory,
            Senders(p.email, p.sms, self.settings.from_email, voice=getattr(p, "voice", None),
                    webhook=getattr(p, "webhook", None), slack=getattr(p, "slack", None),
                    public_url=self.settings.public_url, secret_key=self.settings.secret_key),
            owner=self.owner, lease_seconds=self.settings.lease_seconds, clock=self.clock,
        )
        self.meeting_jobs = MeetingJobs(factory, self.providers.meetings, owner=self.owner,
                                        lease_seconds=self.settings.lease_seconds)
        self.google = GoogleWorker(factory, GoogleSettings.from_env(self.settings.public_url),
                                   secret_key=self.settings.secret_key, owner=self.owner,
                                   lease_seconds=self.settings.lease_seconds, clock=self.clock,
                                   client=getattr(self.providers, "google", None))
        #: Set by the scheduler: run the next tick now (after a booking, so a confirmation is not late).
        self.wake_hook: Callable[[], None] | None = None
        #: Called at 00:00 UTC by the scheduler (daily provider budgets).
        self.midnight_hooks: list[Callable[[datetime], None]] = [self.meeting_jobs.midnight]
        # New meetings are recorded under the provider that will make them (``zoom`` once configured).
        appointments.DEFAULT_MEETING_PROVIDER = getattr(self.providers.meetings, "name", "sandbox")

    def wake(self) -> None:
        if self.wake_hook is not None:
            self.wake_hook()

    # -- one kind of work each; each returns how many units it took -------------------------

    def run_events(self, now: datetime) -> int:
        with self.factory() as session, session.begin():
            return events.process_batch(session, now, limit=max(1, self.settings.batch_size // 5))

    def run_enrollments(self, now: datetime) -> int:
        """Advance due enrollments. Claim and work share one transaction: on PostgreSQL the row
        locks are the lease (SKIP LOCKED lets other workers take other rows); if this process dies
        the transaction rolls back and the rows are due again for the next worker."""
        with self.factory() as session, session.begin():
            query = (
                select(Enrollment)
                .where(
                    Enrollment.state.in_((EnrollmentState.ACTIVE, EnrollmentState.WAITING)),
                    Enrollment.wake_at <= now,
                )
                .order_by(Enrollment.wake_at)
                .limit(self.settings.batch_size)
            )
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            batch = list(session.scalars(query))
            if not batch:
                return 0
            # Held for the whole batch: the identity map only keeps weak references, so without
            # this the prefetched rows would be dropped and re-read one by one.
            session.info["prefetched"] = self._prefetch(session, batch)
            try:
                # One savepoint for the batch lets the inserts of all its steps go out together;
                # only if something breaks is the batch redone one enrollment at a time.
                with session.begin_nested(), enrollments.batched_logs(session):
                    for enrollment in batch:
                        interpreter.advance(session, enrollment, now, cause=_cause(enrollment))
            except SQLAlchemyError:
                raise
            except Exception:
                log.warning("a batch of %d enrollments failed; redoing it one by one", len(batch))
                for enrollment in batch:
                    self._advance_one(session, enrollment, now)
            return len(batch)

    def _prefetch(self, session: Session, batch: list[Enrollment]) -> list:
        """Load the batch's versions, locations, contacts and appointments, one query per table."""
        def load(model, ids):
            ids = {i for i in ids if i}
            return list(session.scalars(select(model).where(model.id.in_(ids)))) if ids else []

        return (load(WorkflowVersion, (e.version_id for e in batch)) + load(Location, (e.location_id for e in batch))
                + load(Contact, (e.contact_id for e in batch)) + load(Appointment, (e.appointment_id for e in batch)))

    def _advance_one(self, session: Session, enrollment: Enrollment, now: datetime) -> None:
        try:
            with session.begin_nested(), enrollments.batched_logs(session):
                interpreter.advance(session, enrollment, now, cause=_cause(enrollment))
        except SQLAlchemyError:
            raise
        except Exception as exc:  # one broken enrollment must not stop the batch
            log.exception("enrollment %s failed", enrollment.id)
            session.refresh(enrollment)
            with session.begin_nested():
                enrollments.finish(session, enrollment, state=EnrollmentState.FAILED, now=now, cancel_pending=False,
                                   reason=f"failed: internal error {type(exc).__name__}: {exc}")

    def run_deliveries(self, now: datetime) -> int:
        return self.delivery.run_batch(now, limit=self.settings.batch_size)

    def run_meetings(self, now: datetime) -> int:
        return self.meeting_jobs.run_batch(now)

    def run_google(self, now: datetime) -> int:
        return self.google.run(now)

    # -- everything --------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, max_rounds: int = 10_000) -> dict[str, int]:
        """Drain all work due at ``now``: events, meetings, enrollments, deliveries, until none is left."""
        fixed = now
        totals = {"events": 0, "meetings": 0, "enrollments": 0, "deliveries": 0, "google": 0}
        for _ in range(max_rounds):
            # Re-read the clock every round: a lease taken late in a long tick must be a full lease,
            # and work that comes due during the tick is picked up in it.
            now = fixed or self.clock.now()
            done = {
                "events": self.run_events(now),
                "meetings": self.run_meetings(now),
                "enrollments": self.run_enrollments(now),
            }
            done["deliveries"] = self.run_deliveries(now)
            done["google"] = self.run_google(now)
            for k, v in done.items():
                totals[k] += v
            if not any(done.values()):
                break
        return totals

    run_due = tick

    def next_due(self) -> datetime | None:
        """The earliest moment any work comes due (now, if an event is waiting), or None if none is scheduled."""
        with self.factory() as session:
            if session.scalar(select(DomainEvent.id).where(DomainEvent.processed_at.is_(None)).limit(1)) is not None:
                return self.clock.now()
            candidates = [
                session.scalar(select(func.min(Enrollment.wake_at)).where(
                    Enrollment.state.in_((EnrollmentState.ACTIVE, EnrollmentState.WAITING)))),
                session.scalar(select(func.min(Message.due_at)).where(Message.status == MessageStatus.PENDING)),
                session.scalar(select(func.min(Meeting.next_attempt_at)).where(
                    Meeting.status.in_((MeetingStatus.PENDING, "deleting")))),
            ]
        found = [c for c in candidates if c is not None]
        return min(found) if found else None
