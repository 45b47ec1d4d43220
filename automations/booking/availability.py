"""Who is free when, for one calendar: the rules every booking path shares (API, CLI, booking page,
Google sync) and the slot list the booking page shows.

- Open hours: weekly hours (``{"mon": [["09:00", "17:00"]], ...}``) plus date overrides
  (``{"2026-12-24": []}`` = day off, ``{"2026-12-27": [["10:00", "12:00"]]}`` = those hours only), read
  in the member's own time zone when the member has hours of their own, else the calendar's. No weekly
  hours at all means open around the clock (calendars made before hours existed keep working).
- Busy: a host's active appointments on any calendar (collective co-hosts included) and outside busy
  blocks (Google), widened by the calendar's buffers. Appointments of the same calendar in exactly the
  same slot count against ``appointments_per_slot`` instead (a class, a group slot).
- Notice and window: a slot starts no sooner than ``min_notice_minutes`` from now and no later than
  ``booking_window_days`` ahead.

Kinds: ``personal`` and ``class`` have one host (the first member); ``round_robin`` needs any member
free; ``collective`` needs every member free; ``unassigned`` has no host — the calendar itself is the
resource.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from sqlalchemy import BindParameter, String, bindparam, func, literal, null, select, union_all
from sqlalchemy.orm import Session

from automations.errors import Conflict, ValidationError
from automations.rendering.timecalc import local_to_utc, parse_tz
from automations.store.db import UTCDateTime
from automations.store.models import Appointment, AppointmentHost, BusyBlock, Calendar, CalendarMember, User
from automations.store.states import AppointmentStatus

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KINDS = ("personal", "round_robin", "collective", "class", "unassigned")
INACTIVE = (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID)
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_RANGES_PER_DAY = 12
MAX_OVERRIDES = 1000
#: The calendar itself stands for the host of an unassigned calendar.
CALENDAR_RESOURCE = "calendar:"


# -- hours: validation ---------------------------------------------------------------------------------


def _minutes(value: object, path: str) -> int:
    if not isinstance(value, str) or not _HHMM.fullmatch(value):
        raise ValidationError.single(path, "must be a time as HH:MM between 00:00 and 24:00")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _ranges(value: object, path: str) -> list[list[str]]:
    if not isinstance(value, list) or len(value) > MAX_RANGES_PER_DAY:
        raise ValidationError.single(path, f"must be a list of at most {MAX_RANGES_PER_DAY} [start, end] pairs")
    out = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValidationError.single(f"{path}[{i}]", "must be a [start, end] pair such as ['09:00', '17:00']")
        start, end = _minutes(pair[0], f"{path}[{i}][0]"), _minutes(pair[1], f"{path}[{i}][1]")
        if end <= start:
            raise ValidationError.single(f"{path}[{i}][1]", "must be after the start")
        out.append([pair[0], pair[1]])
    return out


def parse_weekly(value: object, path: str = "availability") -> dict[str, list[list[str]]]:
    """Validated weekly hours; raises naming the first bad field."""
    if not isinstance(value, dict):
        raise ValidationError.single(path, "must be an object of weekdays (mon..sun) to [start, end] pairs")
    unknown = sorted(set(value) - set(WEEKDAYS))
    if unknown:
        raise ValidationError.single(f"{path}.{unknown[0]}", "not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
    return {day: _ranges(value[day], f"{path}.{day}") for day in WEEKDAYS if day in value}


def parse_overrides(value: object, path: str = "date_overrides") -> dict[str, list[list[str]]]:
    """Validated date overrides: ``YYYY-MM-DD`` to that day's hours (``[]`` = a day off)."""
    if not isinstance(value, dict) or len(value) > MAX_OVERRIDES:
        raise ValidationError.single(path, f"must be an object of at most {MAX_OVERRIDES} dates to hours")
    out = {}
    for key, ranges in value.items():
        try:
            if not _DATE.fullmatch(key):
                raise ValueError
            date.fromisoformat(key)
        except ValueError:
            raise ValidationError.single(f"{path}.{key}", "not a date as YYYY-MM-DD") from None
        out[key] = _ranges(ranges, f"{path}.{key}")
    return out


# -- hours: intervals ----------------------------------------------------------------------------------


def _at(day: date, hhmm: str, zone: ZoneInfo) -> datetime:
    if hhmm == "24:00":
        return local_to_utc(datetime.combine(day + timedelta(days=1), time()), zone)
    hours, minutes = hhmm.split(":")
    return local_to_utc(datetime.combine(day, time(int(hours), int(minutes))), zone)


def open_intervals(weekly: dict | None, overrides: dict | None, zone: ZoneInfo, start: datetime,
                   end: datetime) -> list[tuple[datetime, datetime]]:
    """UTC intervals open under these hours on the local days touching [start, end) (and the day
    before, for hours past midnight), merged and in order. Not clipped: slots align to their starts."""
    weekly, overrides = weekly or {}, overrides or {}
    out: list[tuple[datetime, datetime]] = []
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    while day <= last:
        key = day.isoformat()
        if key in overrides:
            ranges = overrides[key]
        elif weekly:
            ranges = weekly.get(WEEKDAYS[day.weekday()], [])
        else:
            ranges = [["00:00", "24:00"]]
        out.extend((_at(day, a, zone), _at(day, b, zone)) for a, b in ranges)
        day += timedelta(days=1)
    out.sort()
    merged: list[tuple[datetime, datetime]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


# -- hosts and what keeps them busy --------------------------------------------------------------------


@dataclass
class Host:
    """One resource that can take a booking: a member (user id) or, on an unassigned calendar, the calendar."""

    key: str
    weekly: dict | None
    overrides: dict | None
    zone: ZoneInfo
    priority: int = 0
    position: int = 0
    busy: list[tuple[datetime, datetime, str | None, int]] = field(default_factory=list)
    starts: list[datetime] = field(default_factory=list)
    longest: timedelta = timedelta(0)


def calendar_zone(calendar: Calendar, location_tz: str | None = None) -> ZoneInfo:
    return parse_tz(calendar.timezone or location_tz or "UTC", "timezone")


def hosts(session: Session, calendar: Calendar) -> list[Host]:
    """The calendar's resources in member order, with the hours each one keeps."""
    zone = calendar_zone(calendar)
    members: list[CalendarMember] = list(calendar.members)
    if calendar.kind == "unassigned" or not members:
        return [Host(CALENDAR_RESOURCE + calendar.id, calendar.availability, calendar.date_overrides, zone)]
    if calendar.kind in ("personal", "class"):
        members = members[:1]
    # A member's own zone matters only for hours of their own: most calendars need no user row at all.
    own_hours = [m.user_id for m in members if m.availability is not None or m.date_overrides is not None]
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(own_hours)))} if own_hours else {}
    out = []
    for m in members:
        own = m.availability is not None or m.date_overrides is not None
        user = users.get(m.user_id)
        member_zone = parse_tz(user.timezone, "timezone") if own and user and user.timezone else zone
        out.append(Host(
            m.user_id,
            m.availability if m.availability is not None else calendar.availability,
            m.date_overrides if m.date_overrides is not None else calendar.date_overrides,
            member_zone, priority=m.priority or 0, position=m.position,
        ))
    return out


#: The longest an appointment may last (``appointments`` refuses longer ones): availability looks back
#: no further than this for appointments that could still be running, so the index range stays small.
MAX_APPOINTMENT = timedelta(days=7)


def load_busy(session: Session, calendar: Calendar, resources: list[Host], start: datetime, end: datetime,
              exclude_id: str | None = None) -> None:
    """Fill each host's busy list (start, end, calendar id, how many) for [start, end), leaving out the
    appointment ``exclude_id`` (the one being moved). Bookings of one slot come back as one entry with
    their count, so a class with a thousand attendees costs one row, not a thousand (SQL groups them)."""
    by_key = {h.key: h for h in resources}
    user_ids = [k for k in by_key if not k.startswith(CALENDAR_RESOURCE)]
    resource = CALENDAR_RESOURCE + calendar.id
    with_calendar = resource in by_key
    if user_ids or with_calendar:
        params = {"start": start, "end": end, "since": start - MAX_APPOINTMENT, "user_ids": user_ids,
                  "calendar_id": calendar.id, "resource": resource}
        if exclude_id is not None:
            params["exclude_id"] = exclude_id
        rows = session.execute(_busy_query(bool(user_ids), with_calendar, exclude_id is not None), params).all()
    else:
        rows = []
    for key, s, e, cal_id, count in rows:
        by_key[key].busy.append((_utc(s), _utc(e), cal_id, count))
    for h in resources:
        h.busy.sort(key=lambda b: b[0])
        h.starts = [b[0] for b in h.busy]
        h.longest = max((b[1] - b[0] for b in h.busy), default=timedelta(0))


@cache
def _busy_query(users: bool, with_calendar: bool, excluding: bool):
    """Every kind of busy time in one round trip, built once per shape (building it is most of its cost).
    The appointment indexes cover it (host or calendar, times, status), so counting a slot's bookings
    reads no table rows — unless it must leave one out by id (``excluding``: a reschedule), which only
    the table holds: a new booking does not pay for that."""
    start, end = bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    live = (Appointment.status.not_in(INACTIVE), Appointment.start_at < end, Appointment.end_at > start,
            Appointment.start_at > bindparam("since", type_=UTCDateTime()),
            *((Appointment.id != bindparam("exclude_id"),) if excluding else ()))
    slot = (Appointment.start_at, Appointment.end_at, Appointment.calendar_id)
    user_ids: BindParameter[str] = bindparam("user_ids", expanding=True)

    def grouped(who, *where, join=None):
        query = select(who, *slot, func.count())
        if join is not None:
            query = query.select_from(join).join(Appointment, Appointment.id == join.appointment_id)
        return query.where(*where, *live).group_by(who, *slot)

    queries = []
    if users:
        queries.append(grouped(Appointment.assigned_user_id, Appointment.assigned_user_id.in_(user_ids)))
        queries.append(grouped(AppointmentHost.user_id, AppointmentHost.user_id.in_(user_ids), join=AppointmentHost))
        queries.append(select(BusyBlock.user_id, BusyBlock.start_at, BusyBlock.end_at, null(), literal(1))
                       .where(BusyBlock.user_id.in_(user_ids), BusyBlock.start_at < end, BusyBlock.end_at > start))
    if with_calendar:
        queries.append(grouped(bindparam("resource", type_=String()), Appointment.calendar_id == bindparam("calendar_id"),
                               Appointment.assigned_user_id.is_(None)))
    return union_all(*queries)


def _utc(value: datetime | str) -> datetime:
    """A datetime out of a UNION (SQLite hands its column text back untyped): aware UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _padded(calendar: Calendar, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    return (start - timedelta(minutes=calendar.buffer_before_minutes or 0),
            end + timedelta(minutes=calendar.buffer_after_minutes or 0))


@dataclass(frozen=True)
class Rules:
    """The calendar settings ``is_free`` reads, taken once (ORM attribute access is slow in a hot loop)."""

    calendar_id: str
    per_slot: int
    before: timedelta
    after: timedelta

    @classmethod
    def of(cls, calendar: Calendar) -> Rules:
        return cls(calendar.id, calendar.appointments_per_slot or 1,
                   timedelta(minutes=calendar.buffer_before_minutes or 0),
                   timedelta(minutes=calendar.buffer_after_minutes or 0))


def is_free(host: Host, rules: Rules, start: datetime, end: datetime) -> str | None:
    """None when ``host`` can take [start, end) under ``rules``; else why not."""
    lo, hi = start - rules.before, end + rules.after
    same_slot = 0
    # Busy entries are sorted by start: none that starts more than the longest entry before ``lo`` can reach it.
    first = bisect_left(host.starts, lo - host.longest) if host.starts else 0
    for s, e, cal_id, count in host.busy[first:]:
        if s >= hi:
            break
        if e <= lo:
            continue
        if cal_id == rules.calendar_id and s == start and e == end:
            same_slot += count
            continue
        return "busy at that time"
    if same_slot >= rules.per_slot:
        return f"the slot is full ({rules.per_slot} per slot)"
    return None


def _covered(host: Host, start: datetime, end: datetime) -> bool:
    return any(s <= start and end <= e for s, e in open_intervals(host.weekly, host.overrides, host.zone, start, end))


# -- the rules a booking must pass ---------------------------------------------------------------------


def check_notice(calendar: Calendar, start: datetime, now: datetime) -> None:
    notice = timedelta(minutes=calendar.min_notice_minutes or 0)
    if start < now + notice:
        raise Conflict(f"this calendar needs {calendar.min_notice_minutes} minutes' notice",
                       fields={"start_time": [f"must be at least {calendar.min_notice_minutes} minutes from now"]})
    if calendar.booking_window_days and start > now + timedelta(days=calendar.booking_window_days):
        raise Conflict(f"this calendar takes bookings up to {calendar.booking_window_days} days ahead",
                       fields={"start_time": [f"must be within {calendar.booking_window_days} days from now"]})


def bookable_hosts(session: Session, calendar: Calendar, start: datetime, end: datetime, *, now: datetime,
                   override_hours: bool = False, only: Iterable[str] | None = None,
                   exclude_id: str | None = None) -> list[Host]:
    """The hosts that can take [start, end), best first for round robin; raises ``Conflict`` naming why
    none can. ``only`` limits the candidates (a chosen host, the hosts of an appointment being moved);
    ``override_hours`` (staff) skips hours, notice and window — never overlaps or capacity."""
    if not override_hours:
        check_notice(calendar, start, now)
    candidates = hosts(session, calendar)
    if only is not None:
        wanted = set(only)
        candidates = [h for h in candidates if h.key in wanted] or [
            Host(k, None, None, calendar_zone(calendar)) for k in wanted]
    load_busy(session, calendar, candidates, *_padded(calendar, start, end), exclude_id=exclude_id)
    rules = Rules.of(calendar)
    reasons: dict[str, str] = {}
    free = []
    for host in candidates:
        why = None if override_hours or _covered(host, start, end) else "outside the calendar's hours"
        why = why or is_free(host, rules, start, end)
        if why:
            reasons[host.key] = why
        else:
            free.append(host)
    need_all = calendar.kind == "collective" and only is None
    if free and not (need_all and len(free) < len(candidates)):
        return free
    first = next(iter(reasons.values()), "not available")
    if all(r == "outside the calendar's hours" for r in reasons.values()):
        message = f"{start.isoformat()} is outside the calendar's hours"
    elif need_all:
        message = f"not every host of this collective calendar is free at {start.isoformat()}"
    else:
        message = f"no host is free at {start.isoformat()}: {first}"
    raise Conflict(message, fields={"start_time": [first]})


# -- the slot list -------------------------------------------------------------------------------------


@dataclass
class Slot:
    start: datetime
    end: datetime
    #: Free hosts (user ids), best first; empty on an unassigned calendar.
    hosts: list[str]


def slots(session: Session, calendar: Calendar, *, start: datetime, end: datetime, now: datetime) -> list[Slot]:
    """Bookable slots starting in [start, end), after notice and inside the booking window."""
    length = timedelta(minutes=calendar.slot_minutes)
    step = timedelta(minutes=calendar.slot_interval_minutes or calendar.slot_minutes)
    start = max(start, now + timedelta(minutes=calendar.min_notice_minutes or 0))
    if calendar.booking_window_days:
        end = min(end, now + timedelta(days=calendar.booking_window_days) + timedelta(seconds=1))
    if start >= end:
        return []
    resources = hosts(session, calendar)
    load_busy(session, calendar, resources, *_padded(calendar, start, end + length))
    rules = Rules.of(calendar)
    free_by_start: dict[datetime, list[Host]] = {}
    for host in resources:
        for s_open, e_open in open_intervals(host.weekly, host.overrides, host.zone, start, end):
            at = s_open
            if e_open <= start or s_open >= end:
                continue
            while at + length <= e_open and at < end:
                if start <= at < end and is_free(host, rules, at, at + length) is None:
                    free_by_start.setdefault(at, []).append(host)
                at += step
    out = []
    for at in sorted(free_by_start):
        free = free_by_start[at]
        if calendar.kind == "collective" and len(free) < len(resources):
            continue
        ranked = sorted(free, key=lambda h: (-h.priority, h.position))
        out.append(Slot(at, at + length, [h.key for h in ranked if not h.key.startswith(CALENDAR_RESOURCE)]))
    return out


def busy_times(session: Session, user_ids: Iterable[str], start: datetime, end: datetime,
               limit: int = 2000) -> list[BusyBlock]:
    """Time these users are busy outside Punctual (Google events, free/busy) overlapping ``[start, end)``:
    what ``GET /users/{id}/busy-times`` and the calendar view show as blocked time."""
    return list(session.scalars(select(BusyBlock).where(
        BusyBlock.user_id.in_(list(user_ids)), BusyBlock.start_at < end, BusyBlock.end_at > start)
        .order_by(BusyBlock.start_at).limit(limit)))
