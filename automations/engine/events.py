"""Handling domain events, once each and in order per appointment:

(a) the meeting link was already reconciled when the change was written;
(b) the live enrollments the event concerns react (``REACTIONS``) — exit on cancel, restart or
    recalculate on reschedule, re-check wait-for-condition steps, resume reply waits;
(c) the trigger types whose ``event_kinds`` hold the event's kind read it into facts, every published
    workflow with a matching trigger enrolls the contact, and new enrollments run at once (so a
    confirmation is in the outbox in the same transaction). A new trigger type is one module in
    ``triggers/``: nothing here names a trigger or the kinds it listens to.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Integer, Select, bindparam, exists, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from automations.engine import interpreter, replies
from automations.google import event_jobs as google_events
from automations.runs import enrollments
from automations.runs.workflow_doc import doc_for_version
from automations.store.db import get_row, is_postgres, load_by_id, rowcount
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
from triggers import listening_to

log = logging.getLogger(__name__)
_BATCH_CACHE = "events_batch_cache"
_ENROLLMENTS = "enrollments"  # in the batch cache: appointment id -> its enrollments when the batch began


@functools.cache
def _claim_query(postgres: bool) -> Select:
    # Built once per dialect and bound at each call: building it (an aliased self-join) cost more CPU than
    # running it.
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
        .limit(bindparam("limit", type_=Integer))
    )
    if postgres:
        query = query.with_for_update(skip_locked=True, of=DomainEvent)
    return query


def claim_batch(session: Session, limit: int) -> list[DomainEvent]:
    """Unprocessed events, oldest first, skipping any whose appointment has an earlier event still
    unprocessed (another worker holds it): per-appointment order is what keeps a cancel after its booking."""
    return list(session.scalars(_claim_query(is_postgres(session)), {"limit": limit}))


def process_batch(session: Session, now: datetime, limit: int = 200, *,
                  max_sends: int = interpreter.DEFAULT_MAX_SENDS) -> int:
    events = claim_batch(session, limit)
    # The batch's appointments and their contacts in one query each (the session keeps what it loads), so
    # each event's ``session.get`` finds them instead of selecting them one by one.
    appointments = load_by_id(session, Appointment, (e.appointment_id for e in events))
    load_by_id(session, Contact, (a.contact_id for a in appointments.values()))
    # Per batch: each location's published workflows (and the location), read once and held — the
    # identity map keeps only weak references, so without this every event would read them again.
    # Their enrollments too, for the re-entry checks (one query instead of one per event).
    session.info[_BATCH_CACHE] = {_ENROLLMENTS: enrollments.of_appointments(session, appointments)}
    try:
        _process(session, events, now, max_sends)
    finally:
        session.info.pop(_BATCH_CACHE, None)
    return len(events)


def _process(session: Session, events: list[DomainEvent], now: datetime, max_sends: int) -> None:
    # One savepoint for the whole batch (two round trips, not two per event); only if an event
    # breaks is the batch redone one event at a time, each in its own savepoint.
    try:
        with session.begin_nested(), enrollments.batched_logs(session):
            for event in events:
                handle(session, event, now, max_sends=max_sends)
                event.processed_at = now
        return
    except SQLAlchemyError:
        raise
    except Exception:
        log.warning("a batch of %d events failed; redoing it one event at a time", len(events))
    for event in events:
        try:
            with session.begin_nested(), enrollments.batched_logs(session):
                handle(session, event, now, max_sends=max_sends)
        except SQLAlchemyError:
            raise
        except Exception as exc:  # a bug in one event must not stall every later one
            log.exception("event %s (%s) failed", event.id, event.kind)
            event.error = f"{type(exc).__name__}: {exc}"
        event.processed_at = now


#: Appointment changes that the host's linked Google calendar follows.
GOOGLE_KINDS = frozenset({
    EventKind.APPOINTMENT_BOOKED, EventKind.APPOINTMENT_STATUS, EventKind.APPOINTMENT_RESCHEDULED,
    EventKind.APPOINTMENT_UPDATED,
})


def handle(session: Session, event: DomainEvent, now: datetime, *,
           max_sends: int = interpreter.DEFAULT_MAX_SENDS) -> None:
    """(b) the live enrollments the event concerns react; (c) the trigger types listening to its kind
    enroll the contact in every published workflow they match."""
    reaction = REACTIONS.get(event.kind)
    if reaction is not None:
        reaction(session, event, now, max_sends)
    if event.kind in GOOGLE_KINDS and event.appointment_id:
        appointment = session.get(Appointment, event.appointment_id)
        if appointment is not None:
            # Its Google Calendar event follows the change (a just-booked one has no event yet).
            google_events.enqueue(session, appointment, now, new=event.kind == EventKind.APPOINTMENT_BOOKED)
    if event.payload.get("record_past"):
        return  # recorded after the fact (booking.appointments ``record_past``): nothing to confirm or remind
    _enroll(session, event, now, max_sends)


def _enroll(session: Session, event: DomainEvent, now: datetime, max_sends: int) -> None:
    for ttype in listening_to(event.kind):
        facts = ttype.facts(session, event)
        if facts is None:
            continue
        appointment = session.get(Appointment, facts.appointment_id)
        if appointment is None:
            continue  # gone since the event was written (retention): nothing to enroll
        known = (session.info.get(_BATCH_CACHE) or {}).get(_ENROLLMENTS, {})
        for workflow, version in _published(session, appointment.location_id):
            doc = doc_for_version(version)
            matched = next((t for t in doc.triggers if t["type"] == ttype.name and ttype.matches(t["filters"], facts)),
                           None)
            if matched is None:
                continue
            why_not = enrollments.may_enroll(session, workflow, appointment.id, doc.settings, str(event.id),
                                             known=known.get(appointment.id))
            if why_not:
                log.debug("not enrolling %s in %s: %s", appointment.id, workflow.id, why_not)
                continue
            enrollment = enrollments.start(
                session, workflow=workflow, version=version, appointment=appointment, event_id=str(event.id),
                trigger_status=facts.status, rescheduled=appointment.rescheduled, now=now,
                first_step=doc.first_step_id(),
                reason=f"trigger {matched.get('name') or matched['type']}: {ttype.describe(facts)}",
            )
            interpreter.advance(session, enrollment, now, cause="run", max_sends=max_sends)


def _on_status(session: Session, event: DomainEvent, now: datetime, max_sends: int) -> None:
    """Cancellation: a cancelled, invalid or no-show appointment's runs started by other statuses exit."""
    status = event.payload.get("status")
    if status in ENDING_STATUSES and event.appointment_id:
        for enrollment in enrollments.live_for_appointment(session, event.appointment_id):
            if enrollment.trigger_status != status:
                enrollments.finish(session, enrollment, state=EnrollmentState.EXITED, now=now, cancel_pending=True,
                                   reason=f"appointment cancelled (status {status})")
    _recheck_conditions(session, Enrollment.appointment_id == event.appointment_id, now, max_sends)


def _on_reschedule(session: Session, event: DomainEvent, now: datetime, max_sends: int) -> None:
    """Restart (exit and re-enter from the first step) or recalculate appointment-time waits."""
    appointment = session.get(Appointment, event.appointment_id) if event.appointment_id else None
    if appointment is None:
        return
    for enrollment in enrollments.live_for_appointment(session, appointment.id):
        version = get_row(session, WorkflowVersion, enrollment.version_id)
        settings = doc_for_version(version).settings
        if settings.get("reschedule") == "recalculate":
            enrollment.rescheduled = True
            enrollments.log(session, enrollment, outcome="rescheduled", now=now,
                            reason="appointment rescheduled: appointment-time waits recalculated")
            if enrollment.state == EnrollmentState.WAITING and enrollment.wait_kind == "appointment_time":
                # Arrive at the wait again: it recomputes its time and applies the past-time policy.
                enrollment.state = EnrollmentState.ACTIVE
                interpreter.advance(session, enrollment, now, cause="run", max_sends=max_sends)
            continue
        enrollments.finish(session, enrollment, state=EnrollmentState.EXITED, now=now, cancel_pending=True,
                           reason="appointment rescheduled: restarting from the first step")
        workflow = session.get(Workflow, enrollment.workflow_id)
        if workflow is None or workflow.status != WorkflowStatus.PUBLISHED or workflow.current_version_id is None:
            continue
        current = get_row(session, WorkflowVersion, workflow.current_version_id)
        doc = doc_for_version(current)
        restarted = enrollments.start(
            session, workflow=workflow, version=current, appointment=appointment, event_id=str(event.id),
            trigger_status=enrollment.trigger_status, rescheduled=True, now=now, first_step=doc.first_step_id(),
            reason="re-entered after reschedule",
        )
        interpreter.advance(session, restarted, now, cause="run", max_sends=max_sends)
    _recheck_conditions(session, Enrollment.appointment_id == appointment.id, now, max_sends)


def _on_appointment_updated(session: Session, event: DomainEvent, now: datetime, max_sends: int) -> None:
    _recheck_conditions(session, Enrollment.appointment_id == event.appointment_id, now, max_sends)


def _on_contact_updated(session: Session, event: DomainEvent, now: datetime, max_sends: int) -> None:
    _recheck_conditions(session, Enrollment.contact_id == event.contact_id, now, max_sends)


def _on_meeting_resolved(session: Session, event: DomainEvent, now: datetime, max_sends: int) -> None:
    release_held_messages(session, event.payload["meeting_id"], now)


def _on_contact_replied(session: Session, event: DomainEvent, now: datetime, max_sends: int) -> None:
    if event.contact_id:
        replies.on_reply(session, event.contact_id, event.payload, now)


def _recheck_conditions(session: Session, which, now: datetime, max_sends: int) -> None:
    waiting = session.scalars(
        select(Enrollment).where(which, Enrollment.state == EnrollmentState.WAITING, Enrollment.wait_kind == "condition")
    ).all()
    for enrollment in waiting:
        interpreter.advance(session, enrollment, now, cause="event", max_sends=max_sends)


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
    return rowcount(session.execute(
        update(Message)
        .where(
            Message.appointment_id.in_(appointment_ids),
            Message.needs_meeting_link.is_(True),
            Message.status == MessageStatus.PENDING,
            Message.due_at > now,
        )
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    ))


#: How the enrollments an event concerns react to it, by kind (enrolling is routed by the trigger types).
REACTIONS: dict[str, Callable[[Session, DomainEvent, datetime, int], None]] = {
    # Not APPOINTMENT_BOOKED: it is an appointment's first event (events run in order per appointment),
    # so no enrollment of that appointment exists yet to exit or re-check.
    EventKind.APPOINTMENT_STATUS: _on_status,
    EventKind.APPOINTMENT_RESCHEDULED: _on_reschedule,
    EventKind.APPOINTMENT_UPDATED: _on_appointment_updated,
    EventKind.CONTACT_UPDATED: _on_contact_updated,
    EventKind.MEETING_RESOLVED: _on_meeting_resolved,
    EventKind.CONTACT_REPLIED: _on_contact_replied,
}
