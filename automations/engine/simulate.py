"""The send-time simulator: what a workflow would do for a hypothetical booking, step by step.

It runs the real engine — ``enrollments.start``, ``interpreter.advance`` and the real step types —
for a made-up contact and appointment inside a savepoint that is always rolled back, with a frozen
clock that jumps from one wait's wake time to the next. So the timeline says exactly what the engine
would do (past-time policies, ``skip_if_after``, quiet hours, opt-outs, the send cap), because it *is*
what the engine does; nothing is left behind in the database.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.clock import FrozenClock, ensure_utc
from automations.documents import workflows
from automations.documents.validation import checked_document
from automations.engine import interpreter
from automations.errors import NotFound, ValidationError
from automations.rendering import timecalc
from automations.runs import enrollments
from automations.store.db import get_row, take_writer
from automations.store.models import (
    Appointment,
    Calendar,
    Contact,
    DomainEvent,
    Enrollment,
    EnrollmentLog,
    Message,
    Workflow,
    WorkflowVersion,
)
from automations.store.states import EnrollmentState, EventKind, WorkflowStatus
from triggers import TRIGGER_TYPES

#: Wake-ups followed at most, and how far past the appointment: a loop through a time delay would
#: otherwise simulate forever.
MAX_WAKES = 200
HORIZON = timedelta(days=400)

#: Log reasons → why a step was skipped, for the builder to show an icon.
_SKIP_KINDS = (("past-time policy", "past_time"), ("opted out", "opt_out"), ("send cap", "send_cap"),
               ("has no", "no_address"))


@dataclass(frozen=True)
class TimelineEntry:
    step_id: str | None
    step_type: str | None
    step_name: str
    #: What the engine logged: queued, skipped, waiting, resumed, moved, done, stopped, completed …
    outcome: str
    reason: str
    at: str  # ISO 8601, UTC
    at_local: str  # ISO 8601 in the contact's time zone
    #: past_time | opt_out | send_cap | no_address | other, when the step was skipped or stopped.
    skipped: str | None = None
    #: For a queued message: its channel, and when it goes out (later than ``at`` under quiet hours).
    channel: str | None = None
    send_at: str | None = None
    send_at_local: str | None = None
    held_by_quiet_hours: bool = False


@dataclass(frozen=True)
class Timeline:
    trigger_matched: bool
    entries: list[TimelineEntry] = field(default_factory=list)
    #: How the run ended: completed, exited, failed, or still waiting (for a reply or a condition).
    final_state: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def simulate(session: Session, *, location_id: str, document_or_workflow: dict | Workflow | str, calendar_id: str,
             start_time: datetime, contact_timezone: str, booked_at: datetime,
             contact_opted_out: dict | None = None) -> Timeline:
    """The timeline of a workflow (a document, a Workflow or its id: its published version, else its
    draft) for a contact in ``contact_timezone`` who books ``calendar_id`` at ``booked_at`` for
    ``start_time``. ``contact_opted_out`` marks channels opted out: ``{"sms": true, "email": true}``."""
    start_time, booked_at = ensure_utc(start_time), ensure_utc(booked_at)
    zone = timecalc.parse_tz(contact_timezone, "contact_timezone")
    opted = _opted_out(contact_opted_out)
    document = _document(session, location_id, document_or_workflow)
    calendar = session.get(Calendar, calendar_id)
    if calendar is None or calendar.location_id != location_id:
        raise ValidationError.single("calendar_id", f"no calendar with id {calendar_id!r}")
    take_writer(session)  # its rows are written, then rolled back: even from a GET, that is the writer's turn
    savepoint = session.begin_nested()
    try:
        return _run(session, location_id, document, calendar, start_time, booked_at, contact_timezone, zone, opted)
    finally:
        savepoint.rollback()
        session.expire_all()


def _opted_out(value: dict | None) -> dict[str, bool]:
    value = value or {}
    if not isinstance(value, dict) or set(value) - {"sms", "email"}:
        raise ValidationError.single("contact_opted_out", 'must be an object like {"sms": true, "email": false}')
    for key, flag in value.items():
        if not isinstance(flag, bool):
            raise ValidationError.single(f"contact_opted_out.{key}", "must be true or false")
    return value


def _document(session: Session, location_id: str, given: dict | Workflow | str) -> dict:
    if isinstance(given, dict):
        return checked_document(session, location_id, given)
    wf = given if isinstance(given, Workflow) else workflows.get(session, location_id, given)
    if wf.location_id != location_id:
        raise NotFound(f"no workflow {wf.id!r}")
    if wf.current_version_id is not None and wf.status == WorkflowStatus.PUBLISHED:
        return get_row(session, WorkflowVersion, wf.current_version_id).document
    return checked_document(session, location_id, wf.draft)


def _run(session: Session, location_id: str, document: dict, calendar: Calendar, start: datetime,
         booked_at: datetime, tz_name: str, zone: ZoneInfo, opted: dict[str, bool]) -> Timeline:
    clock = FrozenClock(booked_at)
    contact = Contact(location_id=location_id, first_name="Sample", last_name="Contact",
                      email="sample.contact@example.invalid", phone="+15555550100", timezone=tz_name,
                      sms_dnd=opted.get("sms", False), email_dnd=opted.get("email", False),
                      created_at=booked_at, updated_at=booked_at)
    host = min(calendar.members, key=lambda m: m.position).user_id if calendar.members else None
    session.add(contact)
    session.flush()
    appointment = Appointment(location_id=location_id, calendar_id=calendar.id, contact_id=contact.id,
                              assigned_user_id=host, title=calendar.name, start_at=start,
                              end_at=start + timedelta(minutes=calendar.slot_minutes or 30),
                              timezone=calendar.timezone or "UTC", status="confirmed",
                              created_at=booked_at, updated_at=booked_at)
    wf = Workflow(location_id=location_id, name=document["name"], status=WorkflowStatus.DRAFT, draft=document,
                  created_at=booked_at, updated_at=booked_at)
    session.add_all([appointment, wf])
    session.flush()
    version = WorkflowVersion(workflow_id=wf.id, number=1, document=document, published_at=booked_at)
    session.add(version)
    session.flush()
    matched = _trigger_matches(session, document, appointment)
    enrollment = enrollments.start(session, workflow=wf, version=version, appointment=appointment,
                                   event_id="simulation", trigger_status="confirmed", rescheduled=False,
                                   now=booked_at, first_step=document["steps"][0]["id"] if document["steps"] else None,
                                   reason="simulated booking")
    notes: list[str] = []
    cause = "run"
    for _ in range(MAX_WAKES):
        interpreter.advance(session, enrollment, clock.now(), cause=cause)
        if enrollment.state != EnrollmentState.WAITING:
            break
        if enrollment.wake_at is None:
            notes.append(f"waits at step {enrollment.step_id} for a {enrollment.wait_kind} with no timeout")
            break
        if enrollment.wake_at > start + HORIZON:
            notes.append(f"stopped following the run after {enrollment.wake_at.isoformat()}")
            break
        clock.set(max(clock.now(), enrollment.wake_at))
        cause = "due"
    else:
        notes.append(f"stopped following the run after {MAX_WAKES} wake-ups")
    if not matched:
        notes.insert(0, "no trigger of this workflow matches this booking: it would not enroll")
    session.flush()
    return Timeline(matched, _entries(session, enrollment, zone), str(enrollment.state), notes)


def _trigger_matches(session: Session, document: dict, appointment: Appointment) -> bool:
    event = DomainEvent(kind=EventKind.APPOINTMENT_BOOKED, appointment_id=appointment.id,
                        contact_id=appointment.contact_id, payload={"status": "confirmed", "modified_by": "customer"})
    for trig in document["triggers"]:
        ttype = TRIGGER_TYPES.get(trig["type"])
        if event.kind in ttype.event_kinds:
            facts = ttype.facts(session, event)
            if facts is not None and ttype.matches(trig["filters"], facts):
                return True
    return False


def _entries(session: Session, enrollment: Enrollment, zone: ZoneInfo) -> list[TimelineEntry]:
    rows = session.scalars(select(EnrollmentLog).where(EnrollmentLog.enrollment_id == enrollment.id)
                           .order_by(EnrollmentLog.at, EnrollmentLog.id)).all()
    # A message's idempotency key is "<enrollment>:<step_seq>:<n>", the step_seq of its log line.
    by_seq: dict[int, Message] = {}
    for m in session.scalars(select(Message).where(Message.enrollment_id == enrollment.id).order_by(Message.id)):
        by_seq.setdefault(int(m.idempotency_key.split(":")[1]), m)
    doc_steps = {s["id"]: s for s in get_row(session, WorkflowVersion, enrollment.version_id).document["steps"]}
    out = []
    for row in rows:
        if row.step_id is None:
            continue
        step = doc_steps.get(row.step_id, {})
        message = by_seq.get(row.step_seq) if row.outcome == "queued" else None
        skipped = None
        if row.outcome in ("skipped", "stopped"):
            skipped = next((kind for needle, kind in _SKIP_KINDS if needle in row.reason), "other")
        send_at = message.due_at if message is not None else None
        out.append(TimelineEntry(
            step_id=row.step_id, step_type=row.step_type, step_name=step.get("name") or "",
            outcome=row.outcome, reason=row.reason, at=_iso(row.at), at_local=_iso(row.at, zone), skipped=skipped,
            channel=message.channel if message is not None else None,
            send_at=_iso(send_at) if send_at else None, send_at_local=_iso(send_at, zone) if send_at else None,
            held_by_quiet_hours=bool(message is not None and send_at is not None and send_at > row.at
                                     and (message.template or {}).get("time_window")),
        ))
    return out


def _iso(value: datetime, zone: ZoneInfo | None = None) -> str:
    value = ensure_utc(value)
    return (value.astimezone(zone) if zone else value).isoformat()
