"""Booking and changing appointments. Each change and its domain event commit together; the
meeting record is reconciled in the same transaction (the provider call comes later, in a job)."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, joinedload

from automations.booking import availability, domain_events, meetings
from automations.errors import Conflict, ValidationError
from automations.rendering import merge_fields, render_context
from automations.store.db import UTCDateTime, get_in_location, get_row, is_postgres, take_writer
from automations.store.models import Appointment, AppointmentHost, Calendar, Contact, Location, User, new_id
from automations.store.states import AppointmentStatus, EventKind, ModifiedBy

INACTIVE = (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID)


def _status(value: str, path: str = "status") -> AppointmentStatus:
    try:
        return AppointmentStatus(value)
    except ValueError:
        raise ValidationError.single(path, f"must be one of {', '.join(s.value for s in AppointmentStatus)}") from None


def _owned(session: Session, model, obj_id: str | None, location_id: str, path: str, options: tuple = ()):
    obj = session.get(model, obj_id, options=options) if obj_id else None
    if obj is None or obj.location_id != location_id:
        raise ValidationError.single(path, f"no {model.__name__.lower()} with id {obj_id!r} in this location")
    return obj


def _lock(session: Session, calendar: Calendar, user_ids: list[str]) -> None:
    """Serialize bookings that could collide, so check-then-insert cannot race: on PostgreSQL lock the
    calendar row, then the hosts' user rows in id order (the same order everywhere: no deadlock); on
    SQLite take the writer (a transaction that read first ends its read here; any other already began
    with ``BEGIN IMMEDIATE``), after which the transaction runs alone."""
    if not is_postgres(session):
        take_writer(session)
        return
    # FOR NO KEY UPDATE: bookings exclude each other, but rows merely referencing these (foreign-key
    # checks take KEY SHARE, e.g. a Google sync inserting busy blocks) neither wait nor deadlock.
    session.execute(select(Calendar.id).where(Calendar.id == calendar.id).with_for_update(key_share=True))
    if user_ids:
        session.execute(select(User.id).where(User.id.in_(sorted(set(user_ids)))).order_by(User.id)
                        .with_for_update(key_share=True))


#: Round robin weighs at most this many of a calendar's nearest upcoming appointments: exact for any calendar
#: with fewer, and bounded for one with tens of thousands (counting them all cost 5.5 ms at 20,000, inside
#: the booking's write transaction, where every other booking waits on SQLite).
ROTATION_WINDOW = 1000


def _rotation(session: Session, calendar: Calendar, free: list[availability.Host], now: datetime) -> str:
    """Round robin among the free hosts: highest priority first, then whoever has the fewest of the
    calendar's upcoming appointments (its nearest ``ROTATION_WINDOW``), then member order — so assignment
    rotates and skips busy members."""
    counts = dict(session.execute(_rotation_counts(), {"calendar_id": calendar.id, "now": now,
                                                       "window": ROTATION_WINDOW}).all())
    return min(free, key=lambda h: (-h.priority, counts.get(h.key, 0), h.position)).key


@cache
def _rotation_counts():
    """Upcoming appointments per assigned host among the calendar's nearest ``window`` (built once: building
    a statement with a subquery costs more than running it)."""
    nearest = (
        select(Appointment.assigned_user_id)
        .where(Appointment.calendar_id == bindparam("calendar_id"),
               Appointment.start_at >= bindparam("now", type_=UTCDateTime()), Appointment.status.not_in(INACTIVE))
        .order_by(Appointment.start_at)
        .limit(bindparam("window"))
        .subquery()
    )
    return select(nearest.c.assigned_user_id, func.count()).group_by(nearest.c.assigned_user_id)


def _check_past(start_at: datetime, now: datetime, record_past: bool) -> None:
    if record_past and start_at >= now:
        raise ValidationError.single("record_past", "only for appointments that already started")
    if not record_past and start_at < now:
        raise ValidationError.single(
            "start_time", "is in the past; set record_past to record an appointment that already happened")


def _hosts_for(session: Session, calendar: Calendar, start_at: datetime, end_at: datetime, *, now: datetime,
               wanted: str | None, override_hours: bool, exclude_id: str | None = None) -> list[str]:
    """Lock, check and choose: the host ids this booking occupies (first = assigned), [] if none."""
    members = [m.user_id for m in calendar.members]
    if calendar.kind == "unassigned" or not members:
        _lock(session, calendar, [])
        availability.bookable_hosts(session, calendar, start_at, end_at, now=now, override_hours=override_hours,
                                    exclude_id=exclude_id)
        return []
    _lock(session, calendar, [wanted] if wanted else members)
    free = availability.bookable_hosts(session, calendar, start_at, end_at, now=now, override_hours=override_hours,
                                       only=[wanted] if wanted else None, exclude_id=exclude_id)
    if calendar.kind == "collective" and not wanted:
        return [h.key for h in free]
    if calendar.kind == "round_robin" and not wanted:
        return [_rotation(session, calendar, free, now)]
    return [free[0].key]


def _times(calendar: Calendar, start_at: datetime, end_at: datetime | None) -> tuple[datetime, datetime]:
    end_at = end_at or start_at + timedelta(minutes=calendar.slot_minutes)
    if end_at <= start_at:
        raise ValidationError.single("end_time", "must be after start_time")
    if end_at - start_at > availability.MAX_APPOINTMENT:
        raise ValidationError.single("end_time", "an appointment may last at most 7 days")
    return start_at, end_at


def _title(calendar: Calendar, location: Location, contact: Contact, appt: Appointment, session: Session,
           now: datetime) -> str:
    """The calendar's title template rendered with the sandboxed merge-field renderer, else a default."""
    fallback = f"{contact.name or 'Appointment'} – {calendar.name}"
    if not (calendar.title_template or "").strip():
        return fallback
    host = session.get(User, appt.assigned_user_id) if appt.assigned_user_id else None
    context = render_context.build_context(location=location, contact=contact, appointment=appt, calendar=calendar,
                                           assigned_user=host, recipient_tz=appt.timezone, now=now)
    return merge_fields.render(calendar.title_template, context).strip()[:300] or fallback


def booking_calendar(session: Session, location_id: str, calendar_id: str) -> Calendar:
    """The calendar a booking names, with its members: what a read-first transaction (``store.db.
    take_writer``) reads before it takes the writer, so that ``book`` finds it in the session."""
    # The members in the same query (joined; one calendar, a few members): a SELECT less per booking.
    return _owned(session, Calendar, calendar_id, location_id, "calendar_id", (joinedload(Calendar.members),))


def book(session: Session, *, location: Location, calendar_id: str, contact_id: str, start_at: datetime,
         now: datetime, end_at: datetime | None = None, title: str | None = None, status: str | None = None,
         assigned_user_id: str | None = None, notes: str = "", is_recurring: bool = False,
         modified_by: str = ModifiedBy.API, override_hours: bool = False, record_past: bool = False,
         recurrence_id: str | None = None) -> Appointment:
    """Book after the calendar's rules: availability, overlaps, capacity, notice (``override_hours``:
    staff skip hours, notice and window — never overlaps). A past start needs ``record_past``; such a
    booking gets no meeting and its event says so, so no confirmation goes out."""
    calendar = booking_calendar(session, location.id, calendar_id)
    contact = _owned(session, Contact, contact_id, location.id, "contact_id")
    start_at, end_at = _times(calendar, start_at, end_at)
    _check_past(start_at, now, record_past)
    if assigned_user_id:
        _owned(session, User, assigned_user_id, location.id, "assigned_user_id")
        if calendar.members and assigned_user_id not in {m.user_id for m in calendar.members}:
            raise ValidationError.single("assigned_user_id", "user is not a member of this calendar")
    host_ids = _hosts_for(session, calendar, start_at, end_at, now=now, wanted=assigned_user_id,
                          override_hours=override_hours or record_past)
    chosen = _status(status) if status else (AppointmentStatus.CONFIRMED if calendar.auto_confirm else AppointmentStatus.NEW)
    appt = Appointment(
        id=new_id(),  # known before the insert: the meeting and co-hosts are set first, then one INSERT
        location_id=location.id, calendar_id=calendar.id, contact_id=contact.id,
        assigned_user_id=host_ids[0] if host_ids else None, start_at=start_at, end_at=end_at,
        timezone=calendar.timezone or location.timezone or "UTC", status=chosen, notes=notes,
        is_recurring=is_recurring, record_past=record_past, recurrence_id=recurrence_id, created_at=now, updated_at=now,
    )
    appt.title = title or _title(calendar, location, contact, appt, session, now)
    if chosen not in INACTIVE and not record_past:  # a cancelled, invalid or past booking gets no meeting
        meetings.attach(session, appt, calendar, now=now)
    session.add(appt)
    session.add_all(AppointmentHost(appointment_id=appt.id, user_id=u) for u in host_ids[1:])
    extra = {"record_past": True} if record_past else {}
    domain_events.emit(session, location_id=location.id, kind=EventKind.APPOINTMENT_BOOKED, now=now,
                       appointment_id=appt.id, contact_id=contact.id, status=chosen.value, modified_by=str(modified_by),
                       **extra)
    session.flush()  # one flush for the appointment, its co-hosts and its event (column defaults filled in)
    return appt


def host_ids(session: Session, appt: Appointment) -> list[str]:
    """Every host the appointment occupies: the assigned user, then collective co-hosts."""
    co = session.scalars(select(AppointmentHost.user_id).where(AppointmentHost.appointment_id == appt.id)).all()
    return ([appt.assigned_user_id] if appt.assigned_user_id else []) + sorted(co)


def change_status(session: Session, appt: Appointment, status: str, *, modified_by: str, now: datetime) -> bool:
    """Set the status; False when it already was. Cancelling drops the meeting unless shared."""
    new = _status(status)
    old = appt.status
    if old == new:
        return False
    if new in INACTIVE:
        meetings.detach(session, appt, now=now)
    elif old in INACTIVE:
        # Coming back to life must not overlap what was booked meanwhile (hours no longer matter).
        calendar = get_row(session, Calendar, appt.calendar_id)
        hosts = host_ids(session, appt)
        _lock(session, calendar, hosts)
        availability.bookable_hosts(session, calendar, appt.start_at, appt.end_at, now=now, override_hours=True,
                                    only=hosts or None, exclude_id=appt.id)
        meetings.attach(session, appt, get_row(session, Calendar, appt.calendar_id), now=now)
    appt.status = new
    appt.updated_at = now
    domain_events.emit(session, location_id=appt.location_id, kind=EventKind.APPOINTMENT_STATUS, now=now,
                       appointment_id=appt.id, contact_id=appt.contact_id, status=new.value, previous_status=old,
                       modified_by=str(modified_by))
    return True


def reschedule(session: Session, appt: Appointment, *, start_at: datetime, end_at: datetime | None,
               modified_by: str, now: datetime, override_hours: bool = False, record_past: bool = False) -> bool:
    """Move the appointment under the same rules as booking (its own hosts, itself excluded); False
    when date and time are unchanged (the link is kept)."""
    calendar = get_row(session, Calendar, appt.calendar_id)
    if end_at is None:
        end_at = start_at + (appt.end_at - appt.start_at)
    start_at, end_at = _times(calendar, start_at, end_at)
    if start_at == appt.start_at and end_at == appt.end_at:
        return False
    if appt.status in INACTIVE:
        raise Conflict(f"a {appt.status} appointment cannot be rescheduled", fields={"status": [appt.status]})
    _check_past(start_at, now, record_past)
    hosts = host_ids(session, appt)
    _lock(session, calendar, hosts)
    availability.bookable_hosts(session, calendar, start_at, end_at, now=now, override_hours=override_hours or record_past,
                                only=hosts or None, exclude_id=appt.id)
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
        calendar = get_row(session, Calendar, appt.calendar_id)
        member_ids = {m.user_id for m in calendar.members}
        if member_ids and user.id not in member_ids:
            raise ValidationError.single("assigned_user_id", "user is not a member of this calendar")
        if appt.status not in INACTIVE:
            _lock(session, calendar, [user.id])
            availability.bookable_hosts(session, calendar, appt.start_at, appt.end_at, now=now, override_hours=True,
                                        only=[user.id], exclude_id=appt.id)
    for key in changed:
        setattr(appt, key, changes[key])
    appt.updated_at = now
    if "assigned_user_id" in changed and appt.status not in INACTIVE:
        meetings.move(session, appt, get_row(session, Calendar, appt.calendar_id), now=now)
    domain_events.emit(session, location_id=appt.location_id, kind=EventKind.APPOINTMENT_UPDATED, now=now,
                       appointment_id=appt.id, contact_id=appt.contact_id, changed=changed, modified_by=str(modified_by))
    return changed


def get(session: Session, location_id: str, appointment_id: str) -> Appointment:
    return get_in_location(session, Appointment, location_id, appointment_id, "appointment")



