"""Starting and ending enrollments, and the log every step outcome goes to."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from automations.store.db import rowcount, table_of
from automations.store.models import (
    Appointment,
    Enrollment,
    EnrollmentLog,
    Message,
    Workflow,
    WorkflowVersion,
    new_id,
)
from automations.store.states import LIVE_ENROLLMENT_STATES, EnrollmentState, MessageStatus

#: Exit reasons that do not count as "has been through this workflow" for re-entry purposes.
RESTARTABLE_EXITS = ("appointment cancelled", "appointment rescheduled")


LOG_SINK = "enrollment_log_sink"
#: ``session.info`` key: (workflow id, appointment id) -> enrollments ``start`` added in this session.
_STARTED = "enrollments_started"


def log(session: Session, enrollment: Enrollment, *, outcome: str, reason: str, now: datetime,
        step: dict | None = None, detail: dict | None = None) -> None:
    row = {
        "enrollment_id": enrollment.id,
        "step_seq": enrollment.step_seq,
        "step_id": step["id"] if step else None,
        "step_type": step["type"] if step else None,
        "outcome": outcome,
        "reason": reason,
        "detail": detail or {},
        "at": now,
    }
    sink = session.info.get(LOG_SINK)
    if sink is not None:
        sink.append({"id": new_id(), **row})  # written in one executemany by flush_log_sink
    else:
        session.add(EnrollmentLog(**row))


@contextmanager
def batched_logs(session: Session) -> Iterator[None]:
    """Collect log rows written inside the block and insert them in one statement at its end (the
    runtime's batches write thousands). Use it inside the savepoint the work runs in, so a rollback
    drops the rows with the work."""
    session.info[LOG_SINK] = []
    try:
        yield
        rows = session.info[LOG_SINK]
        if rows:
            session.execute(insert(table_of(EnrollmentLog)), rows)
    finally:
        session.info.pop(LOG_SINK, None)


def may_enroll(session: Session, workflow: Workflow, appointment_id: str, settings: dict, event_id: str,
               known: list[Enrollment] | None = None) -> str | None:
    """Why this appointment may not enter the workflow now, or None if it may.

    ``known``: every enrollment the appointment had when the caller loaded them in bulk (a batch of
    events), so none is selected here. Nothing is flushed, so a batch is written in one flush instead of
    one per event; what the batch changed still counts, as loaded enrollments carry their unflushed
    state and those it started are still pending in the session."""
    if known is None:
        known = of_appointments(session, [appointment_id])[appointment_id]
    rows = [e for e in known if e.workflow_id == workflow.id]
    rows += [e for e in session.info.get(_STARTED, {}).get((workflow.id, appointment_id), ()) if e in session]
    if any(row.event_id == event_id for row in rows):
        return "this event already enrolled it"
    if any(row.state in LIVE_ENROLLMENT_STATES for row in rows):
        return "already in this workflow for this appointment"
    if not settings.get("allow_reentry"):
        for reason in (row.exit_reason for row in rows):
            if not (reason or "").startswith(RESTARTABLE_EXITS):
                return "already went through this workflow for this appointment (re-entry is off)"
    return None


def of_appointments(session: Session, appointment_ids: Iterable[str]) -> dict[str, list[Enrollment]]:
    """Every enrollment of these appointments, by appointment, in one query (for ``may_enroll``'s ``known``)."""
    found: dict[str, list[Enrollment]] = {a: [] for a in appointment_ids}
    if found:
        with session.no_autoflush:
            for e in session.scalars(select(Enrollment).where(Enrollment.appointment_id.in_(list(found)))):
                found[str(e.appointment_id)].append(e)  # (never None: selected by it)
    return found


def start(session: Session, *, workflow: Workflow, version: WorkflowVersion, appointment: Appointment,
          event_id: str, trigger_status: str | None, rescheduled: bool, now: datetime, first_step: str | None,
          reason: str) -> Enrollment:
    enrollment = Enrollment(
        id=new_id(),  # known now: its log line and messages refer to it before the batch's one flush
        location_id=workflow.location_id,
        workflow_id=workflow.id,
        version_id=version.id,
        appointment_id=appointment.id,
        contact_id=appointment.contact_id,
        event_id=event_id,
        trigger_status=trigger_status,
        state=EnrollmentState.ACTIVE,
        live=True,
        step_id=first_step,
        step_seq=0,
        wake_at=now,
        rescheduled=rescheduled,
        created_at=now,
        updated_at=now,
    )
    session.add(enrollment)
    # Until the session flushes, ``may_enroll`` finds it here (a rolled-back one is no longer in the session).
    session.info.setdefault(_STARTED, {}).setdefault((workflow.id, appointment.id), []).append(enrollment)
    log(session, enrollment, outcome="enrolled", reason=reason, now=now, detail={"version": version.number})
    return enrollment


def finish(session: Session, enrollment: Enrollment, *, state: EnrollmentState, reason: str, now: datetime,
           cancel_pending: bool) -> None:
    """End an enrollment. Exits also withdraw its messages still in the outbox: nothing goes out
    after a cancel."""
    enrollment.state = state
    enrollment.live = None
    enrollment.wake_at = None
    enrollment.wait_kind = None
    enrollment.exit_reason = reason
    enrollment.finished_at = now
    enrollment.updated_at = now
    if cancel_pending:
        cancelled = rowcount(session.execute(
            update(Message)
            .where(Message.enrollment_id == enrollment.id, Message.status == MessageStatus.PENDING)
            .values(status=MessageStatus.CANCELLED, status_reason=f"withdrawn: {reason}")
        ))
        if cancelled:
            reason = f"{reason}; {cancelled} pending message(s) withdrawn"
    log(session, enrollment, outcome=state.value, reason=reason, now=now)


def live_for_appointment(session: Session, appointment_id: str) -> list[Enrollment]:
    return list(
        session.scalars(
            select(Enrollment)
            .where(Enrollment.appointment_id == appointment_id, Enrollment.live.is_(True))
            .order_by(Enrollment.created_at, Enrollment.id)
        )
    )


def exit_contact_from_workflow(session: Session, *, workflow_id: str, contact_id: str, location_id: str,
                               reason: str, now: datetime) -> int:
    rows = session.scalars(
        select(Enrollment).where(
            Enrollment.workflow_id == workflow_id,
            Enrollment.contact_id == contact_id,
            Enrollment.location_id == location_id,
            Enrollment.live.is_(True),
        )
    ).all()
    for enrollment in rows:
        finish(session, enrollment, state=EnrollmentState.EXITED, reason=reason, now=now, cancel_pending=True)
    return len(rows)
