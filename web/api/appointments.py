"""``/api/v1/appointments``: book (with an existing or an inline new contact), get, list, patch
(status, time, details — all in one transaction), and cancel.

Every change goes through ``automations.booking.appointments`` with ``modified_by="api"``, which writes the
domain event in the same transaction; the worker reacts to it (enroll, exit, restart).
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError as MarshmallowError
from marshmallow import fields, validate, validates_schema
from sqlalchemy.orm import Session

from automations.booking import appointments, privacy
from automations.errors import ValidationError
from automations.store.db import take_writer
from automations.store.models import Appointment, Contact
from automations.store.states import AppointmentStatus, ModifiedBy
from web.api import responses as out
from web.api import serialize
from web.api.common import (
    BodySchema,
    Id,
    PageQuery,
    StrictBoolean,
    Timestamp,
    doc,
    json_body,
    location,
    now,
    owned,
    page,
    paginate,
    query_args,
    scoped,
    tx,
    wake_worker,
)
from web.api.contacts import ContactCreate, create_contact

bp = Blueprint("appointments", __name__)
STATUSES = [s.value for s in AppointmentStatus]


class BookingFlags(BodySchema):
    override_hours = StrictBoolean(load_default=False,
                                   metadata={"description": "staff: allow outside the calendar's hours, notice and "
                                                            "booking window (never an overlap)"})
    record_past = StrictBoolean(load_default=False,
                                metadata={"description": "record an appointment that already happened: no meeting, "
                                                         "no confirmations"})


class AppointmentBook(BookingFlags):
    calendar_id = Id(required=True)
    contact_id = Id(allow_none=True)
    contact = fields.Nested(ContactCreate, allow_none=True, metadata={"description": "a new contact to create, instead of contact_id"})
    start_time = Timestamp(required=True)
    end_time = Timestamp(allow_none=True, load_default=None,
                         metadata={"description": "after start_time (else 422); default: start_time + the "
                                                  "calendar's slot length"})
    title = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))
    status = fields.String(allow_none=True, load_default=None, validate=validate.OneOf(STATUSES),
                           metadata={"description": "default: confirmed, or new when the calendar does not auto-confirm"})
    assigned_user_id = Id(allow_none=True, load_default=None,
                          metadata={"description": "a user of this location, member of the calendar (else 422); "
                                                   "default: picked by the calendar (round robin)"})
    notes = fields.String(load_default="", validate=validate.Length(max=10_000))
    is_recurring = StrictBoolean(load_default=False)

    @validates_schema
    def _one_contact(self, data: dict, **_kw) -> None:
        if data.get("contact_id") and data.get("contact"):
            raise MarshmallowError("give contact_id or contact, not both", field_name="contact")
        if not data.get("contact_id") and not data.get("contact"):
            raise MarshmallowError("required (or an inline contact object)", field_name="contact_id")


class AppointmentPatch(BookingFlags):
    status = fields.String(validate=validate.OneOf(STATUSES))
    start_time = Timestamp()
    end_time = Timestamp(metadata={"description": "after start_time (else 422); moving start_time alone keeps "
                                                  "the length"})
    title = fields.String(validate=validate.Length(min=1, max=300))
    notes = fields.String(validate=validate.Length(max=10_000))
    assigned_user_id = Id()


class AppointmentListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf(STATUSES))
    calendar_id = Id()
    contact_id = Id()


def _apply_patch(session: Session, appt: Appointment, data: dict) -> bool:
    """Apply a patch in an order that keeps the events meaningful; True when anything changed.

    Re-activating (cancelled → confirmed) happens before a reschedule, since an inactive appointment
    cannot move; any other status change happens last, so "move it, then cancel it" reads as such.
    """
    when = now()
    by = ModifiedBy.API
    changed = False
    status = data.get("status")
    reactivating = status is not None and appt.status in appointments.INACTIVE and status not in appointments.INACTIVE
    if reactivating and status is not None:  # (reactivating implies it; said again for the type checker)
        changed |= appointments.change_status(session, appt, status, modified_by=by, now=when)
    if "start_time" in data or "end_time" in data:
        changed |= appointments.reschedule(session, appt, start_at=data.get("start_time", appt.start_at),
                                           end_at=data.get("end_time"), modified_by=by, now=when,
                                           override_hours=data["override_hours"], record_past=data["record_past"])
    details = {k: data[k] for k in ("title", "notes", "assigned_user_id") if k in data}
    if details:
        changed |= bool(appointments.update_details(session, appt, now=when, modified_by=by, **details))
    if status is not None and not reactivating:
        changed |= appointments.change_status(session, appt, status, modified_by=by, now=when)
    return changed


@bp.post("/appointments")
@doc("Book an appointment (enrolls the contact in matching published workflows)", body=AppointmentBook,
     response=out.AppointmentOut, status=201, errors=(409,))
def book() -> ResponseReturnValue:
    data = json_body(AppointmentBook)
    # The location, and the calendar with its members, are read before the writer is taken (on SQLite,
    # where one booking writes at a time, two queries fewer in the writer's hold); whether the slot is
    # free is read after, under it (appointments.book).
    with tx(read_first=True) as s:
        loc = location(s)
        appointments.booking_calendar(s, loc.id, data["calendar_id"])
        take_writer(s)
        contact_id = data.get("contact_id")
        if contact_id:
            known = s.get(Contact, contact_id)
            if known is not None and known.erased_at is not None:
                raise ValidationError.single("contact_id", f"no contact {contact_id!r} in this location")
        if data.get("contact") is not None:
            contact_id = create_contact(s, data["contact"], prefix="contact").id
        if not contact_id:  # AppointmentBook requires one or the other
            raise ValidationError.single("contact_id", "required (or an inline contact object)")
        appt = appointments.book(
            s, location=loc, calendar_id=data["calendar_id"], contact_id=contact_id, start_at=data["start_time"],
            end_at=data["end_time"], title=data["title"], status=data["status"],
            assigned_user_id=data["assigned_user_id"], notes=data["notes"], is_recurring=data["is_recurring"],
            now=now(), modified_by=ModifiedBy.API, override_hours=data["override_hours"],
            record_past=data["record_past"],
        )
        result = serialize.appointment(s, appt)
    wake_worker()
    return result, 201


@bp.get("/appointments")
@doc("List appointments, oldest booking first", query=AppointmentListQuery, response=out.AppointmentOut, many=True)
def list_appointments() -> ResponseReturnValue:
    args = query_args(AppointmentListQuery)
    with tx() as s:
        query = scoped(Appointment)
        for key, column in (("status", Appointment.status), ("calendar_id", Appointment.calendar_id),
                            ("contact_id", Appointment.contact_id)):
            if args.get(key):
                query = query.where(column == args[key])
        rows, cursor = paginate(s, query, Appointment, args)
        return page(serialize.appointments(s, rows), cursor)


@bp.get("/appointments/<appointment_id>")
@doc("Get an appointment, with its meeting state and meeting location", response=out.AppointmentOut)
def get(appointment_id: str) -> ResponseReturnValue:
    with tx() as s:
        return serialize.appointment(s, owned(s, Appointment, appointment_id))


@bp.patch("/appointments/<appointment_id>")
@doc("Change status, time (reschedule) and details in one transaction", body=AppointmentPatch,
     response=out.AppointmentOut, errors=(409,))
def patch(appointment_id: str) -> ResponseReturnValue:
    data = json_body(AppointmentPatch)
    with tx() as s:
        appt = owned(s, Appointment, appointment_id)
        changed = _apply_patch(s, appt, data)
        result = serialize.appointment(s, appt)
    if changed:
        wake_worker()
    return result


@bp.post("/appointments/<appointment_id>/cancel")
@doc("Cancel an appointment (its reminders stop; pending messages are withdrawn)", response=out.AppointmentOut)
def cancel(appointment_id: str) -> ResponseReturnValue:
    json_body(BodySchema, optional=True)  # no fields; still refuse a malformed body
    with tx() as s:
        appt = owned(s, Appointment, appointment_id)
        changed = appointments.change_status(s, appt, AppointmentStatus.CANCELLED, modified_by=ModifiedBy.API,
                                             now=now())
        result = serialize.appointment(s, appt)
    if changed:
        wake_worker()
    return result


@bp.delete("/appointments/<appointment_id>")
@doc("Delete an appointment: cancelled first if still to come (its reminders stop, its meeting is dropped), "
     "its unsent messages withdrawn; then gone from the API (404)", status=204)
def delete(appointment_id: str) -> ResponseReturnValue:
    with tx() as s:
        privacy.delete_appointment(s, owned(s, Appointment, appointment_id), now=now(), modified_by=ModifiedBy.API)
    wake_worker()
    return "", 204
