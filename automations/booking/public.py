"""What a visitor does on a public booking page, as domain functions: find or create their contact
(matched by email, then phone) and book, cancel or reschedule with ``modified_by = customer`` — through
the same ``appointments`` functions as every other path, so the rules, triggers and Zoom rules apply."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.booking import appointments, contacts
from automations.store.models import Appointment, Calendar, Contact, Location
from automations.store.states import AppointmentStatus, ModifiedBy


def find_or_create_contact(session: Session, location: Location, *, first_name: str, last_name: str, email: str,
                           phone: str | None, timezone: str | None, now: datetime) -> Contact:
    contact = session.scalar(select(Contact).where(Contact.location_id == location.id,
                                                   func.lower(Contact.email) == email.lower()).limit(1))
    if contact is None and phone:
        contact = session.scalar(select(Contact).where(Contact.location_id == location.id,
                                                       Contact.phone == phone).limit(1))
    if contact is None:
        return contacts.create(session, location, {"first_name": first_name, "last_name": last_name, "email": email,
                                                   "phone": phone, "timezone": timezone}, now=now)
    # Fill in what we did not know; never overwrite what the business already holds with a visitor's typing.
    changes = {k: v for k, v in (("first_name", first_name), ("last_name", last_name), ("email", email),
                                 ("phone", phone), ("timezone", timezone)) if v and not getattr(contact, k)}
    if changes:
        contacts.update(session, location, contact, changes, now=now)
    return contact


def book(session: Session, location: Location, calendar: Calendar, contact: Contact, *, start_at: datetime,
         notes: str, now: datetime) -> Appointment:
    return appointments.book(session, location=location, calendar_id=calendar.id, contact_id=contact.id,
                             start_at=start_at, notes=notes, now=now, modified_by=ModifiedBy.CUSTOMER)


def cancel(session: Session, appt: Appointment, *, now: datetime) -> bool:
    return appointments.change_status(session, appt, AppointmentStatus.CANCELLED, modified_by=ModifiedBy.CUSTOMER,
                                      now=now)


def reschedule(session: Session, appt: Appointment, *, start_at: datetime, now: datetime) -> bool:
    calendar = session.get(Calendar, appt.calendar_id)
    return appointments.reschedule(session, appt, start_at=start_at,
                                   end_at=start_at + (appt.end_at - appt.start_at) if calendar else None,
                                   modified_by=ModifiedBy.CUSTOMER, now=now)
