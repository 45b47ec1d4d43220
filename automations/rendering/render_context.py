"""Turning model objects into plain data: the merge-field context and the if/else condition facts.

Both are built from the same raw "facts" (see :func:`build_condition_facts`): aware datetimes, bools,
lists, E.164 phone numbers. :func:`build_context` then formats those facts for people: times as
"Monday, January 5, 2026 at 3:00 PM EST" in the recipient's time zone, phone numbers in international
format, and drops what is not a merge field (``contact.tags``, opt-out flags).

Only plain dicts, strings, numbers, bools (and, in facts, datetimes/dates/times and lists) come out:
never model objects, so a template cannot reach Python objects through the context.

Names of days and months are English and fixed (not the process locale), so a worker's locale
cannot change what recipients read.

Context shape (every root is always present, possibly empty)::

    contact        name first_name last_name email phone phone_raw timezone <custom field keys>
    appointment    title start_time only_start_date only_start_time end_time day_of_week month
                   timezone meeting_location cancellation_link reschedule_link notes
                   add_to_google_calendar rescheduled status user{...}
    user           name first_name last_name email phone timezone      (the assigned user)
    calendar       name
    location       name email phone address website timezone
    custom_values  <location custom value keys>
    right_now      date time day_of_week month year day
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from automations.clock import ensure_utc

__all__ = [
    "build_condition_facts",
    "build_context",
    "format_date",
    "format_datetime",
    "format_phone",
    "format_time",
    "google_calendar_url",
    "pick_timezone",
    "resolve_timezone",
]

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

GOOGLE_CALENDAR_RENDER_URL = "https://calendar.google.com/calendar/render"

# Facts that conditions use but that are not merge fields.
_CONTACT_FACTS_ONLY = ("tags", "sms_dnd", "email_dnd")


# -- time zones and formatting ------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def resolve_timezone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name``, or UTC when it is empty or not a valid zone."""
    return (_zone(name) if name else None) or ZoneInfo("UTC")


def pick_timezone(*candidates: str | None) -> str:
    """The first valid IANA name among ``candidates`` (e.g. contact's, then location's), else "UTC"."""
    for name in candidates:
        if name and _zone(name) is not None:
            return name
    return "UTC"


def _zone_abbreviation(moment: datetime) -> str:
    name = moment.tzname() or ""
    # Zones without a letter abbreviation report "-03" or "+0530": make those read as offsets.
    if name[:1] in ("+", "-"):
        return f"UTC{name}"
    return name


def format_date(moment: datetime | date) -> str:
    """``Monday, January 5, 2026``."""
    return f"{_DAYS[moment.weekday()]}, {_MONTHS[moment.month - 1]} {moment.day}, {moment.year}"


def format_time(moment: datetime) -> str:
    """``3:00 PM EST``: 12-hour clock, no leading zero, zone abbreviation of that instant."""
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    abbreviation = _zone_abbreviation(moment)
    text = f"{hour}:{moment.minute:02d} {half}"
    return f"{text} {abbreviation}" if abbreviation else text


def format_datetime(moment: datetime) -> str:
    """``Monday, January 5, 2026 at 3:00 PM EST``."""
    return f"{format_date(moment)} at {format_time(moment)}"


def format_phone(raw: str | None) -> str:
    """International format (``+1 415-555-0100``) for an E.164 number; anything unparsable as given."""
    if not raw:
        return ""
    return _format_phone(raw)


# Parsing dominates context building; location and staff numbers repeat across thousands of messages.
@lru_cache(maxsize=4096)
def _format_phone(raw: str) -> str:
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return raw
    if not phonenumbers.is_possible_number(number):
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _utc_stamp(moment: datetime) -> str:
    return ensure_utc(moment).strftime("%Y%m%dT%H%M%SZ")


def google_calendar_url(
    *, title: str, start: datetime, end: datetime, details: str = "", location: str = ""
) -> str:
    """An "add to Google Calendar" link: ``.../render?action=TEMPLATE&text=..&dates=S/E&details=..``."""
    # Built by hand around ``dates`` so its "/" separator stays literal; every value is
    # percent-encoded (spaces as %20, which Google and mail clients all read the same way).
    text = urlencode({"action": "TEMPLATE", "text": title}, quote_via=quote)
    rest = urlencode({"details": details, "location": location}, quote_via=quote)
    query = f"{text}&dates={_utc_stamp(start)}/{_utc_stamp(end)}&{rest}"
    return f"{GOOGLE_CALENDAR_RENDER_URL}?{query}"


# -- plain values ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ish data from stored JSON (custom fields/values): nothing else may enter a context."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# -- facts: raw data shared by conditions and rendering -----------------------------------------------


def _person_facts(person: Any) -> dict[str, Any]:
    if person is None:
        return {}
    return {
        "name": _text(person.name),
        "first_name": _text(person.first_name),
        "last_name": _text(person.last_name),
        "email": _text(person.email),
        "phone": _text(person.phone),
        "timezone": _text(person.timezone),
    }


def _contact_facts(contact: Any) -> dict[str, Any]:
    if contact is None:
        return {}
    # Custom fields first so a custom key can never shadow a built-in field such as ``email``.
    facts: dict[str, Any] = {str(k): _plain(v) for k, v in (contact.custom_fields or {}).items()}
    facts.update(_person_facts(contact))
    facts["phone_raw"] = facts["phone"]
    facts["tags"] = [str(t) for t in (contact.tags or [])]
    facts["sms_dnd"] = bool(contact.sms_dnd)
    facts["email_dnd"] = bool(contact.email_dnd)
    return facts


def _appointment_facts(
    appointment: Any,
    *,
    zone: ZoneInfo,
    tz_name: str,
    user: dict[str, Any],
    links: Mapping[str, str] | None,
    meeting_location: str | None,
) -> dict[str, Any]:
    if appointment is None:
        return {}
    start = ensure_utc(appointment.start_at).astimezone(zone)
    end = ensure_utc(appointment.end_at).astimezone(zone)
    links = links or {}
    title = _text(appointment.title)
    notes = _text(appointment.notes)
    location_text = _text(meeting_location)
    return {
        "title": title,
        "start_time": start,
        "end_time": end,
        "only_start_date": start.date(),
        "only_start_time": start.timetz(),
        "day_of_week": _DAYS[start.weekday()],
        "month": _MONTHS[start.month - 1],
        "timezone": tz_name,
        "meeting_location": location_text,
        "cancellation_link": _text(links.get("cancellation_link")),
        "reschedule_link": _text(links.get("reschedule_link")),
        "notes": notes,
        "add_to_google_calendar": google_calendar_url(
            title=title, start=start, end=end, details=notes, location=location_text
        ),
        "rescheduled": bool(appointment.rescheduled),
        "status": _text(appointment.status),
        "is_recurring": bool(getattr(appointment, "is_recurring", False)),
        "user": user,
    }


def _right_now_facts(now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    local = ensure_utc(now).astimezone(zone)
    return {
        "datetime": local,
        "date": local.date(),
        "time": local.timetz(),
        "day_of_week": _DAYS[local.weekday()],
        "month": _MONTHS[local.month - 1],
        "year": local.year,
        "day": local.day,
    }


def build_condition_facts(
    *,
    location: Any,
    contact: Any = None,
    appointment: Any = None,
    calendar: Any = None,
    assigned_user: Any = None,
    recipient_tz: str,
    now: datetime,
    links: Mapping[str, str] | None = None,
    meeting_location: str | None = None,
) -> dict[str, Any]:
    """Raw data for if/else conditions, with the same roots and keys as :func:`build_context`.

    Differences from the rendering context: ``appointment.start_time``/``end_time`` are aware
    datetimes in ``recipient_tz`` (they compare correctly with any aware datetime),
    ``only_start_date`` a ``date``, ``only_start_time`` an aware ``time``; ``rescheduled`` and
    ``is_recurring`` bools; ``contact.phone`` E.164; ``contact.tags`` a list plus
    ``sms_dnd``/``email_dnd`` bools; ``right_now`` has ``datetime`` (aware), ``date``, ``time``,
    ``year``/``day`` ints.
    """
    tz_name = pick_timezone(recipient_tz)
    zone = resolve_timezone(tz_name)
    user = _person_facts(assigned_user)
    return {
        "contact": _contact_facts(contact),
        "appointment": _appointment_facts(
            appointment,
            zone=zone,
            tz_name=tz_name,
            user=dict(user),
            links=links,
            meeting_location=meeting_location,
        ),
        "user": user,
        "calendar": {"name": _text(calendar.name)} if calendar is not None else {},
        "location": {
            "name": _text(location.name),
            "email": _text(location.email),
            "phone": _text(location.phone),
            "address": _text(location.address),
            "website": _text(location.website),
            "timezone": _text(location.timezone),
        },
        "custom_values": {str(k): _plain(v) for k, v in (location.custom_values or {}).items()},
        "right_now": _right_now_facts(now, zone),
    }


# -- rendering context: the facts, formatted for people -----------------------------------------------


def _format_person(facts: dict[str, Any]) -> dict[str, Any]:
    if not facts:
        return {}
    return {**facts, "phone": format_phone(facts.get("phone"))}


def _format_contact(facts: dict[str, Any]) -> dict[str, Any]:
    if not facts:
        return {}
    out = {k: v for k, v in facts.items() if k not in _CONTACT_FACTS_ONLY}
    out["phone"] = format_phone(facts.get("phone_raw"))
    return out


def _format_appointment(facts: dict[str, Any]) -> dict[str, Any]:
    if not facts:
        return {}
    start: datetime = facts["start_time"]
    out = {k: v for k, v in facts.items() if k != "is_recurring"}
    out.update(
        start_time=format_datetime(start),
        end_time=format_datetime(facts["end_time"]),
        only_start_date=format_date(start),
        only_start_time=format_time(start),
        user=_format_person(facts["user"]),
    )
    return out


def _format_right_now(facts: dict[str, Any]) -> dict[str, Any]:
    local: datetime = facts["datetime"]
    return {
        "date": format_date(local),
        "time": format_time(local),
        "day_of_week": facts["day_of_week"],
        "month": facts["month"],
        "year": str(facts["year"]),
        "day": str(facts["day"]),
    }


def build_context(
    *,
    location: Any,
    contact: Any = None,
    appointment: Any = None,
    calendar: Any = None,
    assigned_user: Any = None,
    recipient_tz: str,
    now: datetime,
    links: Mapping[str, str] | None = None,
    meeting_location: str | None = None,
) -> dict[str, Any]:
    """The merge-field context for one message (see the module docstring for its shape).

    ``recipient_tz``: the contact's zone for contact messages, the user's for internal ones (invalid
    or empty -> UTC; :func:`pick_timezone` picks among candidates). ``now`` feeds ``right_now``.
    ``links``: ``{"cancellation_link": ..., "reschedule_link": ...}``. ``meeting_location``: the
    resolved Zoom join URL or static location; None renders empty (the caller decides whether to
    wait for a pending meeting, so nothing here falls back to ``Appointment.static_location``).
    """
    facts = build_condition_facts(
        location=location,
        contact=contact,
        appointment=appointment,
        calendar=calendar,
        assigned_user=assigned_user,
        recipient_tz=recipient_tz,
        now=now,
        links=links,
        meeting_location=meeting_location,
    )
    location_facts = facts["location"]
    return {
        "contact": _format_contact(facts["contact"]),
        "appointment": _format_appointment(facts["appointment"]),
        "user": _format_person(facts["user"]),
        "calendar": facts["calendar"],
        "location": {**location_facts, "phone": format_phone(location_facts["phone"])},
        "custom_values": facts["custom_values"],
        "right_now": _format_right_now(facts["right_now"]),
    }
