"""Retention: finished work older than ``PUNCTUAL_RETENTION_DAYS`` is deleted, a bounded batch per
transaction, so a year of reminders does not weigh on the tables the due-work queries read, and no
pruning transaction holds a lock for long.

What goes, once older than the cutoff:

- enrollments that finished (completed, exited, failed) before it, with their log rows and their
  messages — unless one of those messages is still pending or being sent (that work is not finished);
- messages of no enrollment (alerts, internal notes) in a final state, created before it;
- domain events processed before it.

In-app notifications keep their text; only their link to a deleted message is cleared. Contacts,
appointments, meetings and inbound replies are the customer's records and are never pruned here.
The worker runs ``prune`` once a day (``automations.engine.scheduler``); ``PUNCTUAL_RETENTION_DAYS=0``
turns it off.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session, sessionmaker

from automations.store.db import rowcount
from automations.store.models import DomainEvent, Enrollment, EnrollmentLog, Message, Notification
from automations.store.states import EnrollmentState, MessageStatus

log = logging.getLogger(__name__)

FINISHED_ENROLLMENTS = (EnrollmentState.COMPLETED, EnrollmentState.EXITED, EnrollmentState.FAILED)
UNFINISHED_MESSAGES = (MessageStatus.PENDING, MessageStatus.SENDING)


def _finished_enrollments(session: Session, cutoff: datetime, limit: int) -> list[str]:
    unfinished = exists().where(Message.enrollment_id == Enrollment.id, Message.status.in_(UNFINISHED_MESSAGES))
    return list(session.scalars(
        select(Enrollment.id)
        .where(Enrollment.state.in_(FINISHED_ENROLLMENTS), Enrollment.finished_at < cutoff, ~unfinished)
        .limit(limit)
    ))


def _drop_messages(session: Session, message_ids: list[str]) -> int:
    if not message_ids:
        return 0
    session.execute(update(Notification).where(Notification.message_id.in_(message_ids)).values(message_id=None)
                    .execution_options(synchronize_session=False))
    return rowcount(session.execute(delete(Message).where(Message.id.in_(message_ids))
                                    .execution_options(synchronize_session=False)))


def _prune_enrollments(session: Session, cutoff: datetime, batch: int) -> dict[str, int]:
    ids = _finished_enrollments(session, cutoff, batch)
    if not ids:
        return {}
    message_ids = list(session.scalars(select(Message.id).where(Message.enrollment_id.in_(ids))))
    return {
        "messages": _drop_messages(session, message_ids),
        "enrollment_logs": rowcount(session.execute(delete(EnrollmentLog).where(EnrollmentLog.enrollment_id.in_(ids))
                                                    .execution_options(synchronize_session=False))),
        "enrollments": rowcount(session.execute(delete(Enrollment).where(Enrollment.id.in_(ids))
                                                .execution_options(synchronize_session=False))),
    }


def _prune_loose_messages(session: Session, cutoff: datetime, batch: int) -> dict[str, int]:
    ids = list(session.scalars(
        select(Message.id)
        .where(Message.enrollment_id.is_(None), Message.created_at < cutoff, Message.status.not_in(UNFINISHED_MESSAGES))
        .limit(batch)
    ))
    return {"messages": _drop_messages(session, ids)} if ids else {}


def _prune_events(session: Session, cutoff: datetime, batch: int) -> dict[str, int]:
    ids = list(session.scalars(
        select(DomainEvent.id).where(DomainEvent.processed_at.is_not(None), DomainEvent.processed_at < cutoff)
        .limit(batch)
    ))
    if not ids:
        return {}
    return {"domain_events": rowcount(session.execute(delete(DomainEvent).where(DomainEvent.id.in_(ids))
                                                      .execution_options(synchronize_session=False)))}


def prune(factory: sessionmaker[Session], now: datetime, *, days: int, batch: int = 1000,
          max_batches: int | None = None) -> dict[str, int]:
    """Delete finished work older than ``days`` before ``now``, ``batch`` rows of each kind per
    transaction; returns what was deleted per table (and ``batches``, the transactions it took).
    ``days`` <= 0 keeps everything. ``max_batches`` bounds one run (the next run carries on)."""
    totals = {"enrollments": 0, "enrollment_logs": 0, "messages": 0, "domain_events": 0, "batches": 0}
    if days <= 0:
        return totals
    cutoff = now - timedelta(days=days)
    started = time.perf_counter()
    for step in (_prune_enrollments, _prune_loose_messages, _prune_events):
        while max_batches is None or totals["batches"] < max_batches:
            with factory() as session, session.begin():
                done = step(session, cutoff, batch)
            if not done:
                break
            totals["batches"] += 1
            for key, count in done.items():
                totals[key] += count
    if totals["batches"]:
        log.info("retention: deleted %s older than %s in %d transactions, %.1f s",
                 ", ".join(f"{v} {k}" for k, v in totals.items() if v and k != "batches"), cutoff.date(),
                 totals["batches"], time.perf_counter() - started)
    return totals
