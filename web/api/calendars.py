"""``/api/v1/calendars``: full CRUD for calendars of every kind, their members (meeting location,
priority, own hours), availability, the free slots a booking page shows, and recurring bookings.

Request bodies are marshmallow schemas (types and ranges); the rules behind them (hours, kinds,
slugs, templates) live in ``automations.booking.calendars`` so the builder pages share them.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from automations.booking import availability, calendars, recurrence
from automations.rendering.timecalc import parse_tz
from automations.store.models import Calendar, User
from automations.store.states import ModifiedBy
from automations.zoom import connections as zoom_connections
from web.api import serialize
from web.api.common import (
    BodySchema,
    Id,
    PageQuery,
    QuerySchema,
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

bp = Blueprint("calendars", __name__)
MINUTES = validate.Range(min=0, max=7 * 24 * 60)
HOURS_HELP = 'weekday → [start, end] pairs, e.g. {"mon": [["09:00", "17:00"]]}'
OVERRIDES_HELP = 'date → that day\'s hours, [] = a day off, e.g. {"2026-12-24": []}'
MAX_SLOT_DAYS = 62


class MemberIn(BodySchema):
    user_id = Id(required=True)
    meeting_location = fields.String(allow_none=True, load_default=None,
                                     metadata={"description": '"zoom", a static link or text, or null (none)'})
    priority = fields.Integer(load_default=0, validate=validate.Range(min=0, max=100),
                              metadata={"description": "round robin: higher goes first among free members"})
    availability = fields.Dict(allow_none=True, load_default=None,
                               metadata={"description": f"own weekly hours in the user's time zone: {HOURS_HELP}"})
    date_overrides = fields.Dict(allow_none=True, load_default=None, metadata={"description": OVERRIDES_HELP})


class CalendarPatch(BodySchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    slug = fields.String(validate=validate.Length(min=1, max=100))
    kind = fields.String(validate=validate.OneOf(calendars.KINDS))
    timezone = fields.String(allow_none=True, validate=validate.Length(max=64))
    slot_minutes = fields.Integer(validate=validate.Range(min=5, max=24 * 60))
    slot_interval_minutes = fields.Integer(allow_none=True, validate=validate.Range(min=5, max=24 * 60),
                                           metadata={"description": "minutes between slot starts (null: slot length)"})
    buffer_before_minutes = fields.Integer(validate=MINUTES)
    buffer_after_minutes = fields.Integer(validate=MINUTES)
    min_notice_minutes = fields.Integer(validate=validate.Range(min=0, max=365 * 24 * 60))
    booking_window_days = fields.Integer(allow_none=True, validate=validate.Range(min=1, max=3650))
    appointments_per_slot = fields.Integer(validate=validate.Range(min=1, max=1000))
    auto_confirm = StrictBoolean(metadata={"description": "true: bookings are confirmed; false: they start as new"})
    title_template = fields.String(allow_none=True, validate=validate.Length(max=300),
                                   metadata={"description": "e.g. {{contact.name}} – Consultation"})
    description = fields.String(validate=validate.Length(max=5000))
    meeting_location = fields.String(allow_none=True, validate=validate.Length(max=1000),
                                     metadata={"description": "static location (unassigned calendars, Zoom fallback)"})
    availability = fields.Dict(metadata={"description": HOURS_HELP})
    date_overrides = fields.Dict(metadata={"description": OVERRIDES_HELP})
    members = fields.List(fields.Nested(MemberIn), validate=validate.Length(max=calendars.MAX_MEMBERS))


class CalendarCreate(CalendarPatch):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(calendars.KINDS))


class MembersPut(BodySchema):
    members = fields.List(fields.Nested(MemberIn), required=True, validate=validate.Length(max=calendars.MAX_MEMBERS))


class MemberAvailabilityPut(BodySchema):
    availability = fields.Dict(allow_none=True, load_default=None,
                               metadata={"description": f"{HOURS_HELP}; null: the calendar's hours"})
    date_overrides = fields.Dict(allow_none=True, load_default=None,
                                 metadata={"description": f"{OVERRIDES_HELP}; null: the calendar's"})


class SlotsQuery(QuerySchema):
    start = Timestamp(metadata={"description": "default: now"})
    days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=MAX_SLOT_DAYS))
    timezone = fields.String(validate=validate.Length(max=64),
                             metadata={"description": "zone for local_start (default: the calendar's)"})


class SeriesBook(BodySchema):
    contact_id = Id(required=True)
    start_time = Timestamp(required=True)
    end_time = Timestamp(allow_none=True, load_default=None)
    recurrence = fields.String(required=True, validate=validate.Length(min=1, max=recurrence.MAX_RULE_CHARS),
                               metadata={"description": "RRULE bounded by COUNT or UNTIL, e.g. FREQ=WEEKLY;COUNT=6"})
    title = fields.String(allow_none=True, load_default=None, validate=validate.Length(max=300))
    notes = fields.String(load_default="", validate=validate.Length(max=10_000))
    assigned_user_id = Id(allow_none=True, load_default=None)
    override_hours = StrictBoolean(load_default=False, metadata={"description": "staff: book outside the hours"})


def _check_zoom_members(session, cal: Calendar) -> None:
    """Zoom for a member only once that user connected Zoom (the same rule as the meeting-location endpoint)."""
    for member in cal.members:
        if member.meeting_location == calendars.ZOOM:
            zoom_connections.set_member_location(session, cal, session.get(User, member.user_id), calendars.ZOOM,
                                                 now=now())


@bp.get("/calendars")
@doc("List calendars, oldest first", query=PageQuery, response="Calendar", many=True)
def list_calendars() -> ResponseReturnValue:
    args = query_args(PageQuery)
    with tx() as s:
        rows, cursor = paginate(s, scoped(Calendar), Calendar, args)
        return page([serialize.calendar(c) for c in rows], cursor)


@bp.post("/calendars")
@doc("Create a calendar (personal, round_robin, collective, class or unassigned)", body=CalendarCreate,
     response="CalendarDetail", status=201)
def create() -> ResponseReturnValue:
    data = json_body(CalendarCreate)
    with tx() as s:
        cal = calendars.create(s, location(s), data, now=now())
        _check_zoom_members(s, cal)
        return serialize.calendar_detail(s, cal), 201


@bp.get("/calendars/<calendar_id>")
@doc("Get a calendar with its members, their meeting locations and availability", response="CalendarDetail")
def get(calendar_id: str) -> ResponseReturnValue:
    with tx() as s:
        return serialize.calendar_detail(s, owned(s, Calendar, calendar_id))


@bp.patch("/calendars/<calendar_id>")
@doc("Change a calendar's settings, hours or members (only the fields given)", body=CalendarPatch,
     response="CalendarDetail")
def patch(calendar_id: str) -> ResponseReturnValue:
    data = json_body(CalendarPatch)
    with tx() as s:
        cal = calendars.update(s, owned(s, Calendar, calendar_id), data, now=now())
        if "members" in data:
            _check_zoom_members(s, cal)
        return serialize.calendar_detail(s, cal)


@bp.delete("/calendars/<calendar_id>")
@doc("Delete a calendar that has no appointments", status=204, errors=(409,))
def delete(calendar_id: str) -> ResponseReturnValue:
    with tx() as s:
        calendars.delete(s, owned(s, Calendar, calendar_id))
    return "", 204


@bp.put("/calendars/<calendar_id>/members")
@doc("Replace the members (in order), with their meeting location and priority", body=MembersPut,
     response="CalendarDetail")
def put_members(calendar_id: str) -> ResponseReturnValue:
    data = json_body(MembersPut)
    with tx() as s:
        cal = owned(s, Calendar, calendar_id)
        calendars.set_members(s, cal, data["members"])
        _check_zoom_members(s, cal)
        return serialize.calendar_detail(s, cal)


@bp.put("/calendars/<calendar_id>/members/<user_id>/availability")
@doc("Set a member's own weekly hours (in their time zone) and date overrides", body=MemberAvailabilityPut,
     response="CalendarDetail")
def put_member_availability(calendar_id: str, user_id: str) -> ResponseReturnValue:
    data = json_body(MemberAvailabilityPut)
    with tx() as s:
        cal = owned(s, Calendar, calendar_id)
        calendars.set_member_availability(s, cal, user_id, weekly=data["availability"],
                                          overrides=data["date_overrides"])
        return serialize.calendar_detail(s, cal)


@bp.get("/calendars/<calendar_id>/slots")
@doc("Free slots (what the booking page offers), with the hosts free in each", query=SlotsQuery,
     response="FreeSlots")
def free_slots(calendar_id: str) -> ResponseReturnValue:
    args = query_args(SlotsQuery)
    with tx() as s:
        cal = owned(s, Calendar, calendar_id)
        zone = parse_tz(args.get("timezone") or cal.timezone or location(s).timezone, "timezone")
        at = now()
        start = args.get("start") or at
        found = availability.slots(s, cal, start=start, end=start + timedelta(days=args["days"]), now=at)
        return {"timezone": zone.key, "items": [
            {"start_time": serialize.ts(x.start), "end_time": serialize.ts(x.end),
             "local_start": x.start.astimezone(zone).isoformat(), "hosts": x.hosts} for x in found]}


@bp.post("/calendars/<calendar_id>/recurring-appointments")
@doc("Book a recurring series: one appointment per occurrence (event type recurring), all or none",
     body=SeriesBook, response="AppointmentSeries", status=201, errors=(409,))
def book_series(calendar_id: str) -> ResponseReturnValue:
    data = json_body(SeriesBook)
    with tx() as s:
        cal = owned(s, Calendar, calendar_id)
        booked = recurrence.book_series(
            s, location=location(s), calendar_id=cal.id, rule=data["recurrence"], start_at=data["start_time"],
            end_at=data["end_time"], contact_id=data["contact_id"], title=data["title"], notes=data["notes"],
            assigned_user_id=data["assigned_user_id"], override_hours=data["override_hours"], now=now(),
            modified_by=ModifiedBy.API)
        result = {"recurrence_id": booked[0].recurrence_id, "items": serialize.appointments(s, booked)}
    wake_worker()
    return result, 201
