"""Handling domain events, once each and in order per appointment:

(a) the meeting link was already reconciled when the change was written;
(b) this appointment's live enrollments react — exit on cancel, restart or recalculate on
    reschedule, re-check wait-for-condition steps;
(c) every published workflow whose trigger matches enrolls the contact, and new enrollments run
    at once (so a confirmation is in the outbox in the same transaction).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from automations.engine import interpreter
from automations.outbox import inbound
from automations.runs import enrollments
from automations.runs.workflow_doc import doc_for_version
from automations.store.db import is_postgres
from automations.store.models import (
    Appointment,
    Contact,
    DomainEvent,
    Enrollment,
    Location,
    Message,
    Workflow,
    WorkflowVersion,
)
from automations.store.states import (
    ENDING_STATUSES,
    EnrollmentState,
    EventKind,
    MessageStatus,
    WorkflowStatus,
)
from triggers import TRIGGER_TYPES, TriggerFacts

log = logging.getLogger(__name__)
_BATCH_CACHE = "events_batch_cache"
APPOINTMENT_KINDS = {
    EventKind.APPOINTMENT_BOOKED,
    EventKind.APPOINTMENT_STATUS,
    EventKind.APPOINTMENT_RESCHEDULED,
    EventKind.APPOINTMENT_UPDATED,
}


def claim_batch(session: Session, limit: int) -> list[DomainEvent]:
    """Unprocessed events, oldest first, skipping any whose appointment has an earlier event still
    unprocessed (another worker holds it): per-appointment order is what keeps a cancel after its booking."""
    earlier = aliased(DomainEvent)
    query = (
        select(DomainEvent)
        .where(DomainEvent.processed_at.is_(None))
        .where(
            ~exists().where(
                earlier.appointment_id == DomainEvent.appointment_id,
                earlier.processed_at.is_(None),
                earlier.id < DomainEvent.id,
            )
        )
        .order_by(DomainEvent.id)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=DomainEvent)
    return list(session.scalars(query))


def process_batch(session: Session, now: datetime, limit: int = 200) -> int:
    events = claim_batch(session, limit)
    # Per batch: each location's published workflows (and the location), read once and held — the
    # identity map keeps only weak references, so without this every event would read them again.
    session.info[_BATCH_CACHE] = {}
    try:
        _process(session, events, now)
    finally:
        session.info.pop(_BATCH_CACHE, None)
    return len(events)


def _process(session: Session, events: list[DomainEvent], now: datetime) -> None:
    # One savepoint for the whole batch (two round trips, not two per event); only if an event
    # breaks is the batch redone one event at a time, each in its own savepoint.
    try:
        with session.begin_nested():
            for event in events:
                handle(session, event, now)
                event.processed_at = now
        return
    except SQLAlchemyError:
        raise
    except Exception:
        log.warning("a batch of %d events failed; redoing it one event at a time", len(events))
    for event in events:
        try:
            with session.begin_nested():
                handle(session, event, now)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # a bug in one event must not stall every later one
            log.exception("event %s (%s) failed", event.id, event.kind)
            event.error = f"{type(exc).__name__}: {exc}"
        event.processed_at = now


def handle(session: Session, event: DomainEvent, now: datetime) -> None:
    if event.kind in APPOINTMENT_KINDS and event.appointment_id:
        appointment = session.get(Appointment, event.appointment_id)
        if event.kind in (EventKind.APPOINTMENT_BOOKED, EventKind.APPOINTMENT_STATUS):
            _on_status(session, event, appointment, now)
        elif event.kind == EventKind.APPOINTMENT_RESCHEDULED:
            _on_reschedule(session, event, appointment, now)
        if event.kind != EventKind.APPOINTMENT_BOOKED:  # a booking's only enrollments were just run
            _recheck_conditions(session, Enrollment.appointment_id == appointment.id, now)
    elif event.kind == EventKind.CONTACT_UPDATED and event.contact_id:
        _recheck_conditions(session, Enrollment.contact_id == event.contact_id, now)
    elif event.kind == EventKind.MEETING_RESOLVED:
        release_held_messages(session, event.payload["meeting_id"], now)
    elif event.kind == EventKind.CONTACT_REPLIED and event.contact_id:
        inbound.on_reply(session, event.contact_id, event.payload, now)


def _on_status(session: Session, event: DomainEvent, appointment: Appointment, now: datetime) -> None:
    status = event.payload.get("status")
    if status in ENDING_STATUSES:
        for enrollment in enrollments.live_for_appointment(session, appointment.id):
            if enrollment.trigger_status != status:
                enrollments.finish(session, enrollment, state=EnrollmentState.EXITED, now=now, cancel_pending=True,
                                   reason=f"appointment cancelled (status {status})")
    contact = session.get(Contact, appointment.contact_id)
    facts = TriggerFacts(
        event_kind=event.kind,
        status=status,
        previous_status=event.payload.get("previous_status"),
        calendar_id=appointment.calendar_id,
        assigned_user_id=appointment.assigned_user_id,
        is_recurring=appointment.is_recurring,
        contact_tags=tuple(contact.tags or ()),
        modified_by=event.payload.get("modified_by"),
    )
    for workflow, version in _published(session, appointment.location_id):
        doc = doc_for_version(version)
        matched = next(
            (t for t in doc.triggers if TRIGGER_TYPES.get(t["type"]).matches(t["filters"], facts)), None
        )
        if matched is None:
            continue
        why_not = enrollments.may_enroll(session, workflow, appointment.id, doc.settings, str(event.id))
        if why_not:
            log.debug("not enrolling %s in %s: %s", appointment.id, workflow.id, why_not)
            continue
        label = matched.get("name") or matched["type"]
        enrollment = enrollments.start(
            session, workflow=workflow, version=version, appointment=appointment, event_id=str(event.id),
            trigger_status=status, rescheduled=appointment.rescheduled, now=now, first_step=doc.first_step_id(),
            reason=f"trigger {label}: appointment {event.kind.split('.')[-1].replace('_', ' ')} ({status})",
        )
        interpreter.advance(session, enrollment, now, cause="run")


def _on_reschedule(session: Session, event: DomainEvent, appointment: Appointment, now: datetime) -> None:
    for enrollment in enrollments.live_for_appointment(session, appointment.id):
        version = session.get(WorkflowVersion, enrollment.version_id)
        settings = doc_for_version(version).settings
        if settings.get("reschedule") == "recalculate":
            enrollment.rescheduled = True
            enrollments.log(session, enrollment, outcome="rescheduled", now=now,
                            reason="appointment rescheduled: appointment-time waits recalculated")
            if enrollment.state == EnrollmentState.WAITING and enrollment.wait_kind == "appointment_time":
                # Arrive at the wait again: it recomputes its time and applies the past-time policy.
                enrollment.state = EnrollmentState.ACTIVE
                interpreter.advance(session, enrollment, now, cause="run")
            continue
        enrollments.finish(session, enrollment, state=EnrollmentState.EXITED, now=now, cancel_pending=True,
                           reason="appointment rescheduled: restarting from the first step")
        workflow = session.get(Workflow, enrollment.workflow_id)
        if workflow.status != WorkflowStatus.PUBLISHED or workflow.current_version_id is None:
            continue
        current = session.get(WorkflowVersion, workflow.current_version_id)
        doc = doc_for_version(current)
        restarted = enrollments.start(
            session, workflow=workflow, version=current, appointment=appointment, event_id=str(event.id),
            trigger_status=enrollment.trigger_status, rescheduled=True, now=now, first_step=doc.first_step_id(),
            reason="re-entered after reschedule",
        )
        interpreter.advance(session, restarted, now, cause="run")


def _recheck_conditions(session: Session, which, now: datetime) -> None:
    waiting = session.scalars(
        select(Enrollment).where(which, Enrollment.state == EnrollmentState.WAITING, Enrollment.wait_kind == "condition")
    ).all()
    for enrollment in waiting:
        interpreter.advance(session, enrollment, now, cause="event")


def _published(session: Session, location_id: str) -> list[tuple[Workflow, WorkflowVersion]]:
    cache = session.info.get(_BATCH_CACHE)
    if cache is not None and location_id in cache:
        return cache[location_id][0]
    rows = session.execute(
        select(Workflow, WorkflowVersion)
        .join(WorkflowVersion, WorkflowVersion.id == Workflow.current_version_id)
        .where(Workflow.location_id == location_id, Workflow.status == WorkflowStatus.PUBLISHED)
        .order_by(Workflow.created_at, Workflow.id)
    ).all()
    published = [(w, v) for w, v in rows]
    if cache is not None:
        cache[location_id] = (published, session.get(Location, location_id))
    return published


def release_held_messages(session: Session, meeting_id: str, now: datetime) -> int:
    """A meeting link resolved (or failed for good): messages waiting on it are due now."""
    appointment_ids = select(Appointment.id).where(Appointment.meeting_id == meeting_id)
    return session.execute(
        update(Message)
        .where(
            Message.appointment_id.in_(appointment_ids),
            Message.needs_meeting_link.is_(True),
            Message.status == MessageStatus.PENDING,
            Message.due_at > now,
        )
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
