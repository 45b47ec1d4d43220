"""Preview and test-send one message step of a workflow for a real contact and appointment.

The step runs for real (its own ``run``: the same checks, sender settings and quiet-hours stamp as
in a workflow run) inside a savepoint that is always rolled back, so it writes nothing; the message it
would have queued is then rendered by delivery's own render path (``delivery.render_detached``: the
same context, the recipient's time zone, the meeting link). A test send writes that message to the
outbox as a new row marked ``test`` — due now, outside any enrollment — and the worker sends it
through the real channel (captured in demo mode).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from actions import STEP_TYPES
from automations.documents.workflow_schema import load_with_errors
from automations.errors import ValidationError
from automations.outbox import delivery
from automations.rendering import render_context
from automations.runs.step_context import StepContext
from automations.runs.workflow_doc import WorkflowDoc
from automations.store.db import get_row, take_writer
from automations.store.models import (
    Appointment,
    Contact,
    Enrollment,
    Location,
    Message,
    User,
    Workflow,
    new_id,
)
from providers.bag import Providers


@dataclass(frozen=True)
class RenderedMessage:
    channel: str
    audience: str
    to: str | None
    subject: str | None
    body: str
    html: str | None
    #: The time zone the message's times are written in (the recipient's).
    timezone: str
    #: What ``{{ appointment.meeting_location }}`` became; None while a meeting link is not ready yet.
    meeting_location: str | None


@dataclass(frozen=True)
class Preview:
    step_id: str
    step_type: str
    messages: list[RenderedMessage]

    def to_dict(self) -> dict:
        return asdict(self)


def _owned(session: Session, model: Any, obj_id: str | None, location_id: str, name: str):
    if obj_id is None:
        return None
    row = session.get(model, obj_id)
    if row is None or row.location_id != location_id:
        raise ValidationError.single(name, f"no {model.__tablename__[:-1]} with id {obj_id!r} in this location")
    return row


def queued_messages(session: Session, wf: Workflow, *, step_id: str, contact_id: str,
                    appointment_id: str | None, now: datetime) -> tuple[dict, list[Message]]:
    """(the step, the messages it would queue for this contact and appointment), detached: nothing is written.
    A ValidationError names ``step_id`` when the step sends nothing (with the step's own reason)."""
    location = get_row(session, Location, wf.location_id)
    contact = _owned(session, Contact, contact_id, wf.location_id, "contact_id")
    appointment = _owned(session, Appointment, appointment_id, wf.location_id, "appointment_id")
    document, errors = load_with_errors(wf.draft)
    if document is None:
        raise ValidationError("the draft is not a valid workflow document", fields=errors)
    doc = WorkflowDoc.from_dict(document)
    step = doc.step(step_id)
    if step is None:
        raise ValidationError.single("step_id", f"no step {step_id!r} in this workflow's draft")
    # A stand-in run that is never added to the session: the messages' idempotency keys name it.
    enrollment = Enrollment(id="preview", workflow_id=wf.id, contact_id=contact.id, step_id=step_id, step_seq=0,
                            sends=0, appointment_id=appointment.id if appointment else None)
    take_writer(session)  # its rows are written, then rolled back: even from a GET, that is the writer's turn
    savepoint = session.begin_nested()
    try:
        with session.no_autoflush:
            ctx = StepContext(session=session, now=now, enrollment=enrollment, doc=doc, step=step,
                              location=location, contact=contact, appointment=appointment)
            outcome = STEP_TYPES.get(step["type"]).run(ctx)
            messages = [obj for obj in session.new if isinstance(obj, Message)]
            for m in messages:
                session.expunge(m)
    finally:
        savepoint.rollback()
    if not messages:
        raise ValidationError.single("step_id", f"step {step_id!r} ({step['type']}) sends nothing here: "
                                     f"{outcome.reason or outcome.log}")
    messages.sort(key=lambda m: m.idempotency_key)
    return step, messages


def preview(session: Session, wf: Workflow, *, step_id: str, contact_id: str, appointment_id: str | None,
            now: datetime, providers: Providers) -> Preview:
    """What step ``step_id`` would send to this contact about this appointment, rendered now."""
    step, messages = queued_messages(session, wf, step_id=step_id, contact_id=contact_id,
                                     appointment_id=appointment_id, now=now)
    rendered = []
    for m in messages:
        _envelope, link = delivery.render_detached(session, m, now, providers)
        rendered.append(RenderedMessage(m.channel, m.audience, m.to_address, m.subject, m.body or "", m.html,
                                        _zone_of(session, m), link))
    return Preview(step["id"], step["type"], rendered)


def _zone_of(session: Session, m: Message) -> str:
    # The zone delivery renders in (delivery.message_context): the contact's or the recipient user's.
    location = get_row(session, Location, m.location_id)
    appt = session.get(Appointment, m.appointment_id) if m.appointment_id else None
    if m.audience == "contact":
        contact = session.get(Contact, m.contact_id) if m.contact_id else None
        return render_context.pick_timezone(contact.timezone if contact else None,
                                            appt.timezone if appt else None, location.timezone)
    user = session.get(User, m.user_id) if m.user_id else None
    return render_context.pick_timezone(user.timezone if user else None, location.timezone)


def send_test(session: Session, wf: Workflow, *, step_id: str, contact_id: str, appointment_id: str | None,
              now: datetime) -> list[Message]:
    """Write what step ``step_id`` would send to this contact to the outbox now, marked ``test``."""
    _step, messages = queued_messages(session, wf, step_id=step_id, contact_id=contact_id,
                                      appointment_id=appointment_id, now=now)
    out = []
    for m in messages:
        # A test goes now: no quiet hours, no wait for a meeting link beyond what is ready.
        template = {k: v for k, v in m.template.items() if k != "time_window"} | {"test": True}
        row = Message(location_id=m.location_id, idempotency_key=f"test:{new_id()}", enrollment_id=None,
                      step_id=m.step_id, channel=m.channel, audience=m.audience, contact_id=m.contact_id,
                      user_id=m.user_id, appointment_id=m.appointment_id, about_start_at=m.about_start_at,
                      about_status=m.about_status, to_address=m.to_address, outbound=m.outbound, template=template,
                      needs_meeting_link=m.needs_meeting_link, hold_until=None, status="pending", due_at=now,
                      created_at=now)
        session.add(row)
        out.append(row)
    session.flush()
    return out
