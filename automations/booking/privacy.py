"""A contact's personal data: erased on request, or exported whole.

``erase_contact`` cancels the contact's appointments still to come through ``appointments.change_status``
(so the worker exits their enrollments and drops their meetings, as for any cancel), withdraws every
message not yet handed to a provider, and blanks what identifies the person: the contact's fields,
the addresses and rendered text of messages to them, their inbound replies, and every mention of their
name, email or phone in enrollment logs, staff notes about their appointments and those appointments'
titles and notes. The rows stay (history keeps its shape, counts stay true); the API answers 404.

``delete_appointment`` cancels an appointment still to come the same way, withdraws its messages and
marks it deleted. ``export_contact`` gathers every row about one contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from automations.booking import appointments
from automations.store.db import rowcount
from automations.store.models import (
    Appointment,
    Contact,
    Enrollment,
    EnrollmentLog,
    InboundMessage,
    Message,
    Notification,
)
from automations.store.states import AppointmentStatus, MessageStatus

ERASED = "[erased]"


def _withdraw(session: Session, where, reason: str) -> int:
    """Pending messages matching ``where`` are withdrawn (in-flight ones are the provider's already)."""
    return rowcount(session.execute(
        update(Message).where(where, Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.CANCELLED, status_reason=reason)
        .execution_options(synchronize_session=False)
    )) or 0


def _cancel_if_upcoming(session: Session, appt: Appointment, *, now: datetime, modified_by: str) -> bool:
    if appt.status in appointments.INACTIVE or appt.end_at <= now:
        return False
    return appointments.change_status(session, appt, AppointmentStatus.CANCELLED, modified_by=modified_by, now=now)


def _scrubber(contact: Contact):
    """A function blanking every mention of the contact (name, email, phone) in a text."""
    needles = sorted({v for v in (contact.name, contact.first_name if len(contact.first_name or "") > 2 else "",
                                  contact.last_name if len(contact.last_name or "") > 2 else "",
                                  contact.email, contact.phone) if v}, key=len, reverse=True)

    def scrub(text: str | None) -> str | None:
        if not text:
            return text
        for needle in needles:
            text = text.replace(needle, ERASED)
        return text

    return scrub


@dataclass
class Erasure:
    appointments_cancelled: int = 0
    messages_withdrawn: int = 0
    messages_erased: int = 0
    replies_erased: int = 0
    log_lines_scrubbed: int = 0
    appointment_ids: list[str] = field(default_factory=list)


def erase_contact(session: Session, contact: Contact, *, now: datetime, modified_by: str) -> Erasure:
    """Erase the contact's personal data (see the module docstring). Idempotent."""
    result = Erasure()
    scrub = _scrubber(contact)
    appts = list(session.scalars(select(Appointment).where(Appointment.contact_id == contact.id)))
    result.appointment_ids = [a.id for a in appts]
    for appt in appts:
        result.appointments_cancelled += _cancel_if_upcoming(session, appt, now=now, modified_by=modified_by)
        appt.title, appt.notes = scrub(appt.title) or "", scrub(appt.notes) or ""
    about = or_(Message.contact_id == contact.id, Message.appointment_id.in_(result.appointment_ids)) \
        if result.appointment_ids else Message.contact_id == contact.id
    result.messages_withdrawn = _withdraw(session, about, "contact erased")
    for message in session.scalars(select(Message).where(about)):
        if message.contact_id == contact.id:  # to the contact: the address and text are theirs
            message.to_address, message.subject, message.body, message.html = None, None, None, None
        else:  # to staff, about the contact's appointment: keep the note, drop the person
            message.subject, message.body, message.html = scrub(message.subject), scrub(message.body), \
                scrub(message.html)
        message.status_reason = scrub(message.status_reason)
        result.messages_erased += 1
        for note in session.scalars(select(Notification).where(Notification.message_id == message.id)):
            note.title, note.body = scrub(note.title) or "", scrub(note.body) or ""
    for reply in session.scalars(select(InboundMessage).where(InboundMessage.contact_id == contact.id)):
        reply.from_address, reply.body = ERASED, ""
        result.replies_erased += 1
    enrollment_ids = select(Enrollment.id).where(Enrollment.contact_id == contact.id)
    for line in session.scalars(select(EnrollmentLog).where(EnrollmentLog.enrollment_id.in_(enrollment_ids))):
        cleaned = scrub(line.reason) or ""
        if cleaned != line.reason or line.detail:
            line.reason, line.detail = cleaned, {}
            result.log_lines_scrubbed += 1
    contact.first_name, contact.last_name, contact.email, contact.phone = "", "", None, None
    contact.timezone, contact.tags, contact.custom_fields = None, [], {}
    contact.sms_dnd = contact.email_dnd = True  # never contacted again, whatever still refers to the row
    contact.erased_at = contact.erased_at or now
    contact.updated_at = now
    return result


def delete_appointment(session: Session, appt: Appointment, *, now: datetime, modified_by: str) -> None:
    """Cancel the appointment if it is still to come (enrollments exit, meeting dropped), withdraw its
    pending messages, and mark it deleted. Idempotent."""
    _cancel_if_upcoming(session, appt, now=now, modified_by=modified_by)
    _withdraw(session, Message.appointment_id == appt.id, "appointment deleted")
    appt.deleted_at = appt.deleted_at or now
    appt.updated_at = now


@dataclass
class ContactData:
    """Every row about one contact, for an export."""

    contact: Contact
    appointments: list[Appointment]
    enrollments: list[Enrollment]
    logs: dict[str, list[EnrollmentLog]]
    messages: list[Message]
    replies: list[InboundMessage]


def export_contact(session: Session, contact: Contact) -> ContactData:
    appts = list(session.scalars(select(Appointment).where(Appointment.contact_id == contact.id)
                                 .order_by(Appointment.created_at, Appointment.id)))
    enrollments = list(session.scalars(select(Enrollment).where(Enrollment.contact_id == contact.id)
                                       .order_by(Enrollment.created_at, Enrollment.id)))
    logs: dict[str, list[EnrollmentLog]] = {e.id: [] for e in enrollments}
    if logs:
        for line in session.scalars(select(EnrollmentLog).where(EnrollmentLog.enrollment_id.in_(list(logs)))
                                    .order_by(EnrollmentLog.at, EnrollmentLog.id)):
            logs[line.enrollment_id].append(line)
    messages = list(session.scalars(select(Message).where(Message.contact_id == contact.id)
                                    .order_by(Message.created_at, Message.id)))
    replies = list(session.scalars(select(InboundMessage).where(InboundMessage.contact_id == contact.id)
                                   .order_by(InboundMessage.received_at, InboundMessage.id)))
    return ContactData(contact, appts, enrollments, logs, messages, replies)
