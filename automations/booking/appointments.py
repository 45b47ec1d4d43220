"""Booking and changing appointments. Each change and its domain event commit together; the
meeting record is reconciled in the same transaction (the provider call comes later, in a job)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.booking import domain_events, meetings
from automations.errors import Conflict, NotFound, ValidationError
from automations.store.models import Appointment, Calendar, Contact, Location, User
from automations.store.states import AppointmentStatus, EventKind, ModifiedBy

INACTIVE = (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID)


def _status(value: str, path: str = "status") -> AppointmentStatus:
    try:
        return AppointmentStatus(value)
    except ValueError:
        raise ValidationError.single(path, f"must be one of {', '.join(s.value for s in AppointmentStatus)}") from None


def _owned(session: Session, model, obj_id: str | None, location_id: str, path: str):
    obj = session.get(model, obj_id) if obj_id else None
    if obj is None or obj.location_id != location_id:
        raise ValidationError.single(path, f"no {model.__name__.lower()} with id {obj_id!r} in this location")
    return obj


def _pick_host(session: Session, calendar: Calendar, now: datetime) -> str | None:
    """Round robin: the member with the fewest upcoming appointments on this calendar, then list order."""
    members = [m for m in calendar.members]
    if calendar.kind == "unassigned" or not members:
        return None
    if calendar.kind != "round_robin":
        return members[0].user_id
    counts = dict(
        session.execute(
            select(Appointment.assigned_user_id, func.count())
            .where(Appointment.calendar_id == calendar.id, Appointment.start_at >= now,
                   Appointment.status.not_in(INACTIVE))
            .group_by(Appointment.assigned_user_id)
        ).all()
    )
    return min(members, key=lambda m: (counts.get(m.user_id, 0), m.position)).user_id


def _check_capacity(session: Session, calendar: Calendar, user_id: str | None, start_at: datetime,
                    exclude_id: str | None = None) -> None:
    query = select(func.count()).select_from(Appointment).where(
        Appointment.calendar_id == calendar.id, Appointment.start_at == start_at, Appointment.status.not_in(INACTIVE)
    )
    if user_id:
        query = query.where(Appointment.assigned_user_id == user_id)
    if exclude_id:
        query = query.where(Appointment.id != exclude_id)
    if session.scalar(query) >= calendar.appointments_per_slot:
        raise Conflict(f"the slot at {start_at.isoformat()} is full ({calendar.appointments_per_slot} per slot)",
                       fields={"start_time": ["slot is full"]})


def _times(calendar: Calendar, start_at: datetime, end_at: datetime | None) -> tuple[datetime, datetime]:
    end_at = end_at or start_at + timedelta(minutes=calendar.slot_minutes)
    if end_at <= start_at:
        raise ValidationError.single("end_time", "must be after start_time")
    if end_at - start_at > timedelta(days=7):
        raise ValidationError.single("end_time", "an appointment may last at most 7 days")
    return start_at, end_at


def book(session: Session, *, location: Location, calendar_id: str, contact_id: str, start_at: datetime,
         now: datetime, end_at: datetime | None = None, title: str | None = None, status: str | None = None,
         assigned_user_id: str | None = None, notes: str = "", is_recurring: bool = False,
         modified_by: str = ModifiedBy.API) -> Appointment:
    calendar = _owned(session, Calendar, calendar_id, location.id, "calendar_id")
    contact = _owned(session, Contact, contact_id, location.id, "contact_id")
    start_at, end_at = _times(calendar, start_at, end_at)
    if assigned_user_id:
        _owned(session, User, assigned_user_id, location.id, "assigned_user_id")
        if calendar.members and assigned_user_id not in {m.user_id for m in calendar.members}:
            raise ValidationError.single("assigned_user_id", "user is not a member of this calendar")
    else:
        assigned_user_id = _pick_host(session, calendar, now)
    _check_capacity(session, calendar, assigned_user_id, start_at)
    chosen = _status(status) if status else (AppointmentStatus.CONFIRMED if calendar.auto_confirm else AppointmentStatus.NEW)
    appt = Appointment(
        location_id=location.id, calendar_id=calendar.id, contact_id=contact.id, assigned_user_id=assigned_user_id,
        title=title or f"{contact.name or 'Appointment'} – {calendar.name}", start_at=start_at, end_at=end_at,
        timezone=calendar.timezone or location.timezone or "UTC", status=chosen, notes=notes,
        is_recurring=is_recurring, created_at=now, updated_at=now,
    )
    session.add(appt)
    session.flush()
    if chosen not in INACTIVE:  # a cancelled or invalid booking gets no meeting
        meetings.attach(session, appt, calendar, now=now)
    domain_events.emit(session, location_id=location.id, kind=EventKind.APPOINTMENT_BOOKED, now=now,
                       appointment_id=appt.id, contact_id=contact.id, status=chosen.value, modified_by=str(modified_by))
    return appt


def change_status(session: Session, appt: Appointment, status: str, *, modified_by: str, now: datetime) -> bool:
    """Set the status; False when it already was. Cancelling drops the meeting unless shared."""
    new = _status(status)
    old = appt.status
    if old == new:
        return False
    if new in INACTIVE:
        meetings.detach(session, appt, now=now)
    elif old in INACTIVE:
        meetings.attach(session, appt, session.get(Calendar, appt.calendar_id), now=now)
    appt.status = new
    appt.updated_at = now
    domain_events.emit(session, location_id=appt.location_id, kind=EventKind.APPOINTMENT_STATUS, now=now,
                       appointment_id=appt.id, contact_id=appt.contact_id, status=new.value, previous_status=old,
                       modified_by=str(modified_by))
    return True


def reschedule(session: Session, appt: Appointment, *, start_at: datetime, end_at: datetime | None,
               modified_by: str, now: datetime) -> bool:
    """Move the appointment; False when date and time are unchanged (the link is kept)."""
    calendar = session.get(Calendar, appt.calendar_id)
    if end_at is None:
        end_at = start_at + (appt.end_at - appt.start_at)
    start_at, end_at = _times(calendar, start_at, end_at)
    if start_at == appt.start_at and end_at == appt.end_at:
        return False
    if appt.status in INACTIVE:
        raise Conflict(f"a {appt.status} appointment cannot be rescheduled", fields={"status": [appt.status]})
    _check_capacity(session, calendar, appt.assigned_user_id, start_at, exclude_id=appt.id)
    old_start = appt.start_at
    appt.start_at, appt.end_at = start_at, end_at
    appt.rescheduled = True
    appt.updated_at = now
    meetings.move(session, appt, calendar, now=now)
    domain_events.emit(session, location_id=appt.location_id, kind=EventKind.APPOINTMENT_RESCHEDULED, now=now,
                       appointment_id=appt.id, contact_id=appt.contact_id, previous_start=old_start.isoformat(),
                       start=start_at.isoformat(), modified_by=str(modified_by))
    return True


def update_details(session: Session, appt: Appointment, *, now: datetime, modified_by: str, **changes) -> list[str]:
    """Edit title, notes or host. A new host moves the meeting (their Zoom, their slot)."""
    changed = [k for k, v in changes.items() if v is not None and getattr(appt, k) != v]
    if not changed:
        return []
    if "assigned_user_id" in changed:
        user = _owned(session, User, changes["assigned_user_id"], appt.location_id, "assigned_user_id")
        calendar = session.get(Calendar, appt.calendar_id)
        member_ids = {m.user_id for m in calendar.members}
        if member_ids and user.id not in member_ids:
            raise ValidationError.single("assigned_user_id", "user is not a member of this calendar")
    for key in changed:
        setattr(appt, key, changes[key])
    appt.updated_at = now
    if "assigned_user_id" in changed and appt.status not in INACTIVE:
        meetings.move(session, appt, session.get(Calendar, appt.calendar_id), now=now)
    domain_events.emit(session, location_id=appt.location_id, kind=EventKind.APPOINTMENT_UPDATED, now=now,
                       appointment_id=appt.id, contact_id=appt.contact_id, changed=changed, modified_by=str(modified_by))
    return changed


def get(session: Session, location_id: str, appointment_id: str) -> Appointment:
    appt = session.get(Appointment, appointment_id)
    if appt is None or appt.location_id != location_id:
        raise NotFound(f"no appointment {appointment_id!r}")
    return appt



