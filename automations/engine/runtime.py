"""The runtime: everything a worker does, as methods that take ``now``.

``tick(now)`` drains all due work synchronously (tests and benchmarks drive it with a frozen
clock); the scheduler (``automations/engine/scheduler.py``) calls the same methods on a timer. Every
handoff goes through the database, so any number of runtimes may run at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automations.clock import Clock, SystemClock
from automations.engine import due_work, events, interpreter
from automations.google.connections import GoogleSettings
from automations.google.worker import GoogleWorker
from automations.outbox.delivery import Delivery
from automations.runs import enrollments
from automations.settings import Settings
from automations.store.db import is_postgres, load_by_id, read_only_session, worker_id
from automations.store.models import (
    Appointment,
    Contact,
    Enrollment,
    Location,
    WorkflowVersion,
)
from automations.store.states import EnrollmentState
from automations.zoom.meeting_jobs import MeetingJobs
from providers.bag import Providers

log = logging.getLogger(__name__)


def _cause(enrollment: Enrollment) -> str:
    return "due" if enrollment.state == EnrollmentState.WAITING else "run"


class Runtime:
    def __init__(self, factory: sessionmaker[Session], *, clock: Clock | None = None,
                 providers: Providers | None = None, settings: Settings | None = None, owner: str | None = None) -> None:
        self.factory = factory
        self.clock = clock or SystemClock()
        self.settings = settings or Settings()
        #: Built from settings at the composition root (``automations.wiring``); offline ones by default.
        self.providers = providers or Providers(default_from_email=self.settings.from_email,
                                                public_url=self.settings.public_url,
                                                secret_key=self.settings.secret_key)
        self.owner = owner or worker_id()
        self.delivery = Delivery(factory, self.providers, owner=self.owner,
                                 lease_seconds=self.settings.lease_seconds, clock=self.clock)
        self.meeting_jobs = MeetingJobs(factory, self.providers.meetings, owner=self.owner,
                                        lease_seconds=self.settings.lease_seconds)
        self.google = GoogleWorker(factory, GoogleSettings.from_env(self.settings.public_url),
                                   secret_key=self.settings.secret_key, owner=self.owner,
                                   lease_seconds=self.settings.lease_seconds, clock=self.clock,
                                   client=getattr(self.providers, "google", None))
        #: Set by the scheduler: run the next tick now (after a booking, so a confirmation is not late).
        self.wake_hook: Callable[[], None] | None = None
        #: Called at 00:00 UTC by the scheduler (daily provider budgets).
        self.midnight_hooks: list[Callable[[datetime], object]] = [self.meeting_jobs.midnight]

    def wake(self) -> None:
        if self.wake_hook is not None:
            self.wake_hook()

    # -- one kind of work each; each returns how many units it took -------------------------

    def run_events(self, now: datetime) -> int:
        with self.factory() as session, session.begin():
            return events.process_batch(session, now, limit=max(1, self.settings.batch_size // 5),
                                        max_sends=self.settings.max_sends_per_enrollment)

    def run_enrollments(self, now: datetime) -> int:
        """Advance due enrollments. Claim and work share one transaction: on PostgreSQL the row
        locks are the lease (SKIP LOCKED lets other workers take other rows); if this process dies
        the transaction rolls back and the rows are due again for the next worker."""
        with self.factory() as session, session.begin():
            query = (
                select(Enrollment)
                .where(*due_work.enrollments_due(now))
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
                        interpreter.advance(session, enrollment, now, cause=_cause(enrollment),
                                            max_sends=self.settings.max_sends_per_enrollment)
            except SQLAlchemyError:
                raise
            except Exception:
                log.warning("a batch of %d enrollments failed; redoing it one by one", len(batch))
                for enrollment in batch:
                    self._advance_one(session, enrollment, now)
            return len(batch)

    def _prefetch(self, session: Session, batch: list[Enrollment]) -> list:
        """Load the batch's versions, locations, contacts and appointments, one query per table."""
        return [row for model, column in ((WorkflowVersion, "version_id"), (Location, "location_id"),
                                          (Contact, "contact_id"), (Appointment, "appointment_id"))
                for row in load_by_id(session, model, (getattr(e, column) for e in batch)).values()]

    def _advance_one(self, session: Session, enrollment: Enrollment, now: datetime) -> None:
        try:
            with session.begin_nested(), enrollments.batched_logs(session):
                interpreter.advance(session, enrollment, now, cause=_cause(enrollment),
                                    max_sends=self.settings.max_sends_per_enrollment)
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
        """Drain all work due at ``now``: events, meetings, enrollments, deliveries, until none is left.

        Each round asks the database which kinds are due (one read, :mod:`automations.engine.due_work`) and
        runs only those; after a kind did work it asks again, since that work may have made more due at once
        (a booking's confirmation email, its meeting job)."""
        fixed = now
        totals = dict.fromkeys(due_work.KINDS, 0)
        runners = {"events": self.run_events, "meetings": self.run_meetings, "enrollments": self.run_enrollments,
                   "deliveries": self.run_deliveries, "google": self.run_google}
        due = self.due_now(fixed or self.clock.now())
        for _ in range(max_rounds):
            if not due:
                break
            # Re-read the clock every round: a lease taken late in a long tick must be a full lease,
            # and work that comes due during the tick is picked up in it (the probe after each piece of
            # work asks at the new time).
            now = fixed or self.clock.now()
            worked = False
            for kind in due_work.KINDS:
                if kind not in due:
                    continue
                done = runners[kind](now)
                totals[kind] += done
                if done:
                    worked = True
                    due = self.due_now(fixed or self.clock.now())
            if not worked:
                break
        return totals

    def due_now(self, now: datetime) -> frozenset[str]:
        """The kinds of work with something to claim at ``now`` (a read; never waits for a writer)."""
        with read_only_session(self.factory) as session:
            return due_work.due_now(session, now, with_google=self.google.connections is not None)

    def next_due(self) -> datetime | None:
        """The earliest moment any work comes due (now, if an event is waiting), or None if none is scheduled."""
        with read_only_session(self.factory) as session:
            return due_work.next_due(session, self.clock.now())
