"""Recurring bookings: an RFC 5545 RRULE (``FREQ=WEEKLY;COUNT=6``) expanded with python-dateutil in
the calendar's time zone — the same wall-clock time across DST — and booked occurrence by occurrence
under the calendar's rules. Each occurrence is its own appointment (event type ``recurring``) with its
own meeting; all share a ``recurrence_id``. One occurrence that cannot be booked refuses the series.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice

from dateutil.rrule import rrulestr
from sqlalchemy.orm import Session

from automations.booking import appointments
from automations.errors import Conflict, ValidationError
from automations.rendering.timecalc import local_to_utc, parse_tz
from automations.store.models import Appointment, Calendar, Location, new_id

MAX_OCCURRENCES = 52
MAX_RULE_CHARS = 500


def occurrences(rule: str, first_start: datetime, tz_name: str) -> list[datetime]:
    """UTC starts of the series (the first is ``first_start``); the rule must be bounded by COUNT or UNTIL."""
    if not isinstance(rule, str) or not rule.strip() or len(rule) > MAX_RULE_CHARS:
        raise ValidationError.single("recurrence", f"must be an RRULE of at most {MAX_RULE_CHARS} characters")
    text = rule.strip().removeprefix("RRULE:")
    upper = text.upper()
    if "COUNT=" not in upper and "UNTIL=" not in upper:
        raise ValidationError.single("recurrence", f"must be bounded with COUNT (at most {MAX_OCCURRENCES}) or UNTIL")
    zone = parse_tz(tz_name, "timezone")
    local_first = first_start.astimezone(zone).replace(tzinfo=None)
    try:
        parsed = rrulestr(text, dtstart=local_first, ignoretz=True)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValidationError.single("recurrence", f"not a valid RRULE: {exc}") from None
    starts = list(islice(iter(parsed), MAX_OCCURRENCES + 1))
    if len(starts) > MAX_OCCURRENCES:
        raise ValidationError.single("recurrence", f"makes more than {MAX_OCCURRENCES} occurrences")
    if not starts:
        raise ValidationError.single("recurrence", "makes no occurrences")
    return [local_to_utc(s, zone) for s in starts]


def book_series(session: Session, *, location: Location, calendar_id: str, rule: str, start_at: datetime,
                now: datetime, **booking) -> list[Appointment]:
    """Book every occurrence (``booking`` as for ``appointments.book``); all or none."""
    calendar = session.get(Calendar, calendar_id)
    if calendar is None or calendar.location_id != location.id:
        raise ValidationError.single("calendar_id", f"no calendar with id {calendar_id!r} in this location")
    series = new_id()
    booked = []
    for i, start in enumerate(occurrences(rule, start_at, calendar.timezone or location.timezone or "UTC")):
        end = booking.get("end_at")
        kwargs = {**booking, "end_at": start + (end - start_at) if end else None}
        try:
            booked.append(appointments.book(session, location=location, calendar_id=calendar_id, start_at=start,
                                            now=now, is_recurring=True, recurrence_id=series, **kwargs))
        except Conflict as exc:
            raise Conflict(f"occurrence {i + 1} ({start.isoformat()}) cannot be booked: {exc.message}",
                           fields={f"recurrence[{i}]": [exc.message]}) from None
    return booked
