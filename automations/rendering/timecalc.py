"""Time arithmetic for wait steps: time delays with advance windows, and appointment-relative waits.

Everything here is a pure function of its arguments: ``now`` is always passed in and the clock is never
read. Inputs are timezone-aware datetimes and every result is aware UTC; local time exists only inside
these functions, in the IANA zone they are given.

Two kinds of units, on purpose (see DESIGN.md, "Wait, time delay" and "Wait, event/appointment time"):

* **Calendar units** (days, months) move the local wall clock: 1 day after 10:00 is 10:00 the next day,
  even when a DST change makes that 23 or 25 real hours.
* **Absolute units** (seconds, minutes, hours) are elapsed time: 24 hours is always 86,400 seconds.

Local wall-clock times that do not map to exactly one instant are resolved one way everywhere:

* a time inside a spring-forward gap (02:30 on the night New York skips 02:00-03:00) is shifted forward
  by the length of the gap (03:30 EDT), as RFC 5545 and java.time do;
* an ambiguous time in a fall-back overlap (01:30 on the night New York repeats 01:00-02:00) is the first
  occurrence (``fold=0``, still on summer time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from automations.errors import ValidationError

__all__ = [
    "DIRECTIONS",
    "UNITS",
    "AdvanceWindow",
    "AppointmentOffset",
    "appointment_wait_target",
    "delay_until",
    "local_to_utc",
    "parse_tz",
]

Unit = Literal["seconds", "minutes", "hours", "days"]
Direction = Literal["before", "after", "exact"]

UNITS: tuple[str, ...] = ("seconds", "minutes", "hours", "days")
DIRECTIONS: tuple[str, ...] = ("before", "after", "exact")

MAX_MONTHS = 9999
#: Days are never carried into months, so they need their own bound (about 1000 years).
MAX_DAYS = 365_000
# A window repeats every week, so 8 days ahead (plus the day before, for windows spanning midnight)
# always contains an opening of any window that opens at all.
_LOOKAHEAD_DAYS = 8

_DAY_NAMES = {
    "mon": 0,
    "monday": 0,
    "tue": 1,
    "tuesday": 1,
    "wed": 2,
    "wednesday": 2,
    "thu": 3,
    "thursday": 3,
    "fri": 4,
    "friday": 4,
    "sat": 5,
    "saturday": 5,
    "sun": 6,
    "sunday": 6,
}
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")


def _path(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if prefix else field


def _is_int(value: object) -> bool:
    # bool is an int subclass, but `true` in a JSON document is never a count.
    return isinstance(value, int) and not isinstance(value, bool)


def _require_aware(value: datetime, name: str) -> None:
    # A naive datetime here is a programming error, not user input: fail loudly rather than guess.
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


# --------------------------------------------------------------------------------------------- zones


def parse_tz(name: str, path: str) -> ZoneInfo:
    """The IANA zone ``name``; a :class:`ValidationError` at ``path`` when it is not a known zone."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError.single(path, "must be an IANA time zone name such as 'America/New_York'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: keys like '../etc' or absolute paths; OSError: a directory name such as 'America'.
        raise ValidationError.single(path, f"unknown time zone {name!r}") from None


def _zone(tz: str | ZoneInfo, path: str = "tz") -> ZoneInfo:
    return tz if isinstance(tz, ZoneInfo) else parse_tz(tz, path)


def local_to_utc(wall: datetime, tz: str | ZoneInfo) -> datetime:
    """The UTC instant at which the wall clock in ``tz`` shows ``wall`` (naive; tzinfo is ignored).

    A wall time inside a spring-forward gap does not exist: it is shifted forward by the length of the
    gap (02:30 on a day that skips 02:00-03:00 becomes 03:30), as RFC 5545 and java.time do. An
    ambiguous one in a fall-back overlap takes its first occurrence. Both are what PEP 495's
    ``fold=0`` means: read the wall time with the offset in force *before* the transition.
    """
    zone = _zone(tz)
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _wall(day: date, at: time, zone: ZoneInfo) -> datetime:
    return local_to_utc(datetime.combine(day, at), zone)


# ------------------------------------------------------------------------------------ advance window


def _check_window(days: object, start: object, end: object, prefix: str) -> None:
    if not isinstance(days, frozenset) or not all(_is_int(d) and 0 <= d <= 6 for d in days):
        raise ValidationError.single(
            _path(prefix, "days"), "must be weekday numbers 0 (Monday) to 6 (Sunday)"
        )
    for field, value in (("start", start), ("end", end)):
        if value is not None and not isinstance(value, time):
            raise ValidationError.single(_path(prefix, field), "must be a time of day")
        if isinstance(value, time) and value.tzinfo is not None:
            raise ValidationError.single(_path(prefix, field), "must be a local time without a zone")
    if (start is None) != (end is None):
        missing = "end" if end is None else "start"
        raise ValidationError.single(_path(prefix, missing), "start and end must be given together")
    if start is not None and start == end:
        # An empty window would never open (and "all day" is spelled by leaving both out).
        raise ValidationError.single(_path(prefix, "end"), "must differ from start")


def _parse_hhmm(value: object, path: str) -> time | None:
    if value is None:
        return None
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValidationError.single(path, "must be a time as HH:MM, e.g. '09:00'")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        raise ValidationError.single(path, "must be a time between 00:00 and 23:59")
    return time(hour, minute)


@dataclass(frozen=True)
class AdvanceWindow:
    """When a delayed step may resume: allowed weekdays and between-hours, in local time.

    ``days`` holds weekday numbers (0 = Monday … 6 = Sunday); empty means every day. ``start``/``end``
    are local times, both ``None`` for any time of day. The window is ``[start, end)``: it opens at
    ``start`` and is closed again at ``end``. When ``end`` is earlier than ``start`` the window spans
    midnight (22:00-06:00); such a window belongs to the day it *opens* on, so a Friday-only 22:00-06:00
    window includes Saturday 02:00 but not Friday 02:00.
    """

    days: frozenset[int] = frozenset()
    start: time | None = None
    end: time | None = None

    def __post_init__(self) -> None:
        _check_window(self.days, self.start, self.end, "window")

    @classmethod
    def parse(
        cls,
        days: list[str] | None,
        start: str | None,
        end: str | None,
        *,
        path_prefix: str = "",
    ) -> AdvanceWindow:
        """A window from document values: ``days`` like ``["mon", "tue"]`` (or full names, any case;
        empty or ``None`` = every day), ``start``/``end`` as ``"HH:MM"`` or ``None``.

        Errors are :class:`ValidationError` naming ``{path_prefix}.days[i]``, ``.start`` or ``.end``.
        """
        if days is None:
            days = []
        if not isinstance(days, list | tuple):
            raise ValidationError.single(_path(path_prefix, "days"), "must be a list of weekdays")
        numbers: set[int] = set()
        for i, name in enumerate(days):
            number = _DAY_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
            if number is None:
                raise ValidationError.single(
                    f"{_path(path_prefix, 'days')}[{i}]",
                    "must be a weekday: mon, tue, wed, thu, fri, sat or sun",
                )
            numbers.add(number)
        start_t = _parse_hhmm(start, _path(path_prefix, "start"))
        end_t = _parse_hhmm(end, _path(path_prefix, "end"))
        _check_window(frozenset(numbers), start_t, end_t, path_prefix)
        return cls(frozenset(numbers), start_t, end_t)

    def _interval(self, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC span of the window opening on local ``day`` (possibly empty, e.g. inside a gap)."""
        if self.start is None or self.end is None:
            return _wall(day, time(0), zone), _wall(day + timedelta(days=1), time(0), zone)
        close_day = day + timedelta(days=1) if self.end < self.start else day
        return _wall(day, self.start, zone), _wall(close_day, self.end, zone)

    def _first_instant(self, at: datetime, zone: ZoneInfo) -> datetime:
        """``at`` if it is inside the window, else the window's next opening (UTC)."""
        if not self.days and self.start is None:
            return at
        today = at.astimezone(zone).date()
        # Start a day early: yesterday's window may span midnight and still be open now. Openings
        # come in time order, so the first one that has not closed yet is the answer.
        for offset in range(-1, _LOOKAHEAD_DAYS + 1):
            day = today + timedelta(days=offset)
            if self.days and day.weekday() not in self.days:
                continue
            opens, closes = self._interval(day, zone)
            if opens < closes and at < closes:
                return max(at, opens)
        # Unreachable for a window that passed validation: a weekly window opens within 8 days.
        raise ValidationError.single("window", "never opens")


# --------------------------------------------------------------------------------------- time delay


def delay_until(
    now: datetime,
    *,
    amount: int,
    unit: Unit,
    window: AdvanceWindow | None = None,
    tz: str | ZoneInfo,
) -> datetime:
    """When a "wait N units" step resumes: the first instant in ``window`` at or after ``now`` + delay.

    ``days`` are calendar days in ``tz`` (same wall-clock time, 23 or 25 real hours across DST);
    ``seconds``/``minutes``/``hours`` are absolute. The window, if any, is read in ``tz``: an instant
    inside it is kept, otherwise the step moves to the window's next opening. Returns aware UTC.
    """
    _require_aware(now, "now")
    zone = _zone(tz)
    if not _is_int(amount) or amount < 0:
        raise ValidationError.single("amount", "must be a whole number, 0 or more")
    if unit not in UNITS:
        raise ValidationError.single("unit", f"must be one of {', '.join(UNITS)}")
    try:
        if unit == "days":
            local = now.astimezone(zone)
            target = local_to_utc(local.replace(tzinfo=None) + timedelta(days=amount), zone)
        else:
            target = now.astimezone(UTC) + timedelta(**{unit: amount})
        return window._first_instant(target, zone) if window is not None else target
    except OverflowError:
        raise ValidationError.single("amount", "is too large") from None


# ------------------------------------------------------------------------------- appointment offset


@dataclass(frozen=True)
class AppointmentOffset:
    """How far before/after an appointment's start a wait ends: months, days, hours, minutes.

    Build one from user input with :meth:`normalize`, which rolls larger inputs over into the next unit
    (months 0-9999, days 0-30, hours 0-23, minutes 0-59), as DESIGN.md prescribes. The constructor takes
    the values as given and only checks they are whole numbers, 0 or more: ``AppointmentOffset(hours=24)``
    is 24 elapsed hours, whereas ``normalize(hours=24)`` is 1 calendar day.
    """

    months: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0

    def __post_init__(self) -> None:
        for field in ("months", "days", "hours", "minutes"):
            value = getattr(self, field)
            if not _is_int(value) or value < 0:
                raise ValidationError.single(field, "must be a whole number, 0 or more")

    @classmethod
    def normalize(
        cls, months: int = 0, days: int = 0, hours: int = 0, minutes: int = 0, path_prefix: str = ""
    ) -> AppointmentOffset:
        """An offset from raw inputs, rolling each unit over into the next larger one.

        The rule, applied smallest unit first so carries cascade:

        * minutes of 60 or more carry into hours (``minutes // 60``), leaving ``minutes % 60``;
        * hours of 24 or more carry into days (``hours // 24``), leaving ``hours % 24``;
        * days are **never** carried into months: 45 days is 45 calendar days, not 1 month 15 days
          (a month is not a fixed number of days, and nobody typing 45 days means one).

        So 90 minutes = 1 hour 30 minutes, 30 hours = 1 day 6 hours, 45 days = 45 days. Note what
        roll-over means: the carried units take the *calendar* meaning of the larger unit (1 day),
        which across DST differs from 24 real hours.

        Every input must be a whole number, 0 or more; months must be at most 9999 and days (after
        roll-over) at most :data:`MAX_DAYS`. Errors are :class:`ValidationError` naming
        ``{path_prefix}.<field>``.
        """
        raw = {"months": months, "days": days, "hours": hours, "minutes": minutes}
        for field, value in raw.items():
            if not _is_int(value):
                raise ValidationError.single(_path(path_prefix, field), "must be a whole number")
            if value < 0:
                raise ValidationError.single(_path(path_prefix, field), "must be 0 or more")
        carry, minutes = divmod(minutes, 60)
        carry, hours = divmod(hours + carry, 24)
        days += carry
        if months > MAX_MONTHS:
            raise ValidationError.single(_path(path_prefix, "months"), f"must be at most {MAX_MONTHS}")
        if days > MAX_DAYS:
            raise ValidationError.single(
                _path(path_prefix, "days"), f"must be at most {MAX_DAYS} (after rolling over hours and minutes)"
            )
        return cls(months, days, hours, minutes)


def appointment_wait_target(
    start: datetime,
    tz: str | ZoneInfo,
    direction: Direction,
    offset: AppointmentOffset,
) -> datetime:
    """The instant a "wait for appointment time" step ends, in UTC.

    ``exact`` is the start itself. ``before``/``after`` first move the start's wall clock in the
    appointment's zone ``tz`` by the calendar months and days (month ends clamp: Jan 31 + 1 month is
    Feb 28/29), resolve that local time (in a gap: shifted forward by the gap's length; in an overlap:
    the first occurrence), then move by the hours and minutes as elapsed time.
    """
    _require_aware(start, "start")
    zone = _zone(tz)
    if direction not in DIRECTIONS:
        raise ValidationError.single("direction", f"must be one of {', '.join(DIRECTIONS)}")
    if direction == "exact":
        return start.astimezone(UTC)
    sign = 1 if direction == "after" else -1
    try:
        wall = start.astimezone(zone).replace(tzinfo=None)
        wall += sign * relativedelta(months=offset.months, days=offset.days)
        target = local_to_utc(wall, zone)
        return target + sign * timedelta(hours=offset.hours, minutes=offset.minutes)
    except (OverflowError, ValueError):
        # 9999 months before a 2026 appointment is before year 1.
        raise ValidationError.single(
            "offset", "moves the appointment time out of the supported range"
        ) from None
