"""Tests for automations.rendering.timecalc: delays, advance windows, appointment offsets, DST edges.

Every expected instant is written out literally in UTC, with the local wall time in a comment, so the
tests never recompute an answer with the code under test. 2026 DST changes used below:
America/New_York springs forward 2026-03-08 02:00 EST -> 03:00 EDT (07:00Z) and falls back
2026-11-01 02:00 EDT -> 01:00 EST (06:00Z); Europe/London springs forward 2026-03-29 01:00 GMT -> 02:00
BST (01:00Z) and falls back 2026-10-25 02:00 BST -> 01:00 GMT (01:00Z). January 2026: Wed 7, Fri 9,
Sat 10, Mon 12.
"""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from automations.errors import ValidationError
from automations.rendering import timecalc
from automations.rendering.timecalc import (
    AdvanceWindow,
    AppointmentOffset,
    appointment_wait_target,
    delay_until,
    local_to_utc,
    parse_tz,
)

NY = "America/New_York"
LDN = "Europe/London"
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def Z(*args: int) -> datetime:
    """A UTC instant, written out literally."""
    return datetime(*args, tzinfo=UTC)


def field_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    (path,) = excinfo.value.fields
    return path


# ------------------------------------------------------------------------------------- time delays


@pytest.mark.parametrize(
    ("now", "amount", "unit", "tz", "expected"),
    [
        pytest.param(Z(2026, 1, 15, 12), 30, "seconds", NY, Z(2026, 1, 15, 12, 0, 30), id="30-seconds"),
        pytest.param(Z(2026, 1, 15, 12), 90, "minutes", NY, Z(2026, 1, 15, 13, 30), id="90-minutes"),
        pytest.param(Z(2026, 1, 15, 12), 5, "hours", NY, Z(2026, 1, 15, 17), id="5-hours"),
        pytest.param(Z(2026, 1, 15, 12), 3, "days", NY, Z(2026, 1, 18, 12), id="3-days-no-dst"),
        pytest.param(Z(2026, 1, 15, 12), 0, "days", NY, Z(2026, 1, 15, 12), id="zero"),
        # 10:00 EST + 2 calendar days = 10:00 EDT on Mar 9: 47 real hours.
        pytest.param(Z(2026, 3, 7, 15), 2, "days", NY, Z(2026, 3, 9, 14), id="ny-days-spring-forward"),
        # 48 absolute hours across the same change: 11:00 EDT.
        pytest.param(Z(2026, 3, 7, 15), 48, "hours", NY, Z(2026, 3, 9, 15), id="ny-hours-spring-forward"),
        # 10:00 EDT + 1 day = 10:00 EST on Nov 1: 25 real hours.
        pytest.param(Z(2026, 10, 31, 14), 1, "days", NY, Z(2026, 11, 1, 15), id="ny-days-fall-back"),
        pytest.param(Z(2026, 10, 31, 14), 24, "hours", NY, Z(2026, 11, 1, 14), id="ny-hours-fall-back"),
        # 10:00 GMT + 1 day = 10:00 BST: 23 real hours.
        pytest.param(Z(2026, 3, 28, 10), 1, "days", LDN, Z(2026, 3, 29, 9), id="london-days-spring-forward"),
        # 10:00 BST + 1 day = 10:00 GMT: 25 real hours.
        pytest.param(Z(2026, 10, 24, 9), 1, "days", LDN, Z(2026, 10, 25, 10), id="london-days-fall-back"),
        # 02:30 EST + 1 day = 02:30 on Mar 8, which does not exist: shifted by the gap's hour, 03:30 EDT.
        pytest.param(Z(2026, 3, 7, 7, 30), 1, "days", NY, Z(2026, 3, 8, 7, 30), id="days-into-gap"),
        # 01:30 EDT + 1 day = 01:30 on Nov 1, which happens twice: the first (EDT) one.
        pytest.param(Z(2026, 10, 31, 5, 30), 1, "days", NY, Z(2026, 11, 1, 5, 30), id="days-into-overlap"),
        # From the second 01:30 (EST) on Nov 1, + 1 day = 01:30 EST on Nov 2.
        pytest.param(Z(2026, 11, 1, 6, 30), 1, "days", NY, Z(2026, 11, 2, 6, 30), id="days-from-overlap"),
        # 23:30 EDT Mar 31 + 1 day = 23:30 EDT Apr 1 (the local date, not the UTC date, moves).
        pytest.param(Z(2026, 4, 1, 3, 30), 1, "days", NY, Z(2026, 4, 2, 3, 30), id="days-local-date"),
    ],
)
def test_delay_until_without_window(
    now: datetime, amount: int, unit: str, tz: str, expected: datetime
) -> None:
    result = delay_until(now, amount=amount, unit=unit, window=None, tz=tz)
    assert result == expected
    assert result.tzinfo is UTC


def test_delay_accepts_any_aware_now_and_returns_utc() -> None:
    now = datetime(2026, 1, 15, 7, 0, tzinfo=ZoneInfo(NY))  # 12:00Z
    result = delay_until(now, amount=1, unit="hours", window=None, tz=LDN)
    assert result == Z(2026, 1, 15, 13)
    assert result.tzinfo is UTC


def test_delay_accepts_a_zoneinfo() -> None:
    assert delay_until(Z(2026, 3, 7, 15), amount=2, unit="days", tz=ZoneInfo(NY)) == Z(2026, 3, 9, 14)


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"amount": 1, "unit": "weeks", "tz": NY}, "unit"),
        ({"amount": -1, "unit": "days", "tz": NY}, "amount"),
        ({"amount": 1.5, "unit": "hours", "tz": NY}, "amount"),
        ({"amount": True, "unit": "hours", "tz": NY}, "amount"),
        ({"amount": 1, "unit": "hours", "tz": "Mars/Olympus_Mons"}, "tz"),
        ({"amount": 10**9, "unit": "days", "tz": NY}, "amount"),
    ],
)
def test_delay_rejects_bad_input(kwargs: dict, path: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        delay_until(Z(2026, 1, 15, 12), **kwargs)
    assert field_of(excinfo) == path


def test_delay_rejects_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        delay_until(datetime(2026, 1, 15, 12), amount=1, unit="hours", tz=NY)


# ---------------------------------------------------------------------------------- advance windows


@pytest.mark.parametrize(
    ("now", "amount", "unit", "window", "tz", "expected"),
    [
        # Weekdays 09:00-17:00 New York (EST = UTC-5 in January).
        pytest.param(
            Z(2026, 1, 7, 15), 1, "hours", (WEEKDAYS, "09:00", "17:00"), NY, Z(2026, 1, 7, 16), id="inside"
        ),
        pytest.param(
            Z(2026, 1, 7, 14),
            0,
            "hours",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 1, 7, 14),
            id="at-opening",
        ),
        # Wed 05:00 + 2h = 07:00, before opening: Wed 09:00.
        pytest.param(
            Z(2026, 1, 7, 10),
            2,
            "hours",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 1, 7, 14),
            id="before-opening",
        ),
        # Wed 16:00 + 2h = 18:00, after closing: Thu 09:00.
        pytest.param(
            Z(2026, 1, 7, 21),
            2,
            "hours",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 1, 8, 14),
            id="after-closing",
        ),
        # The window is [start, end): 17:00 itself is closed.
        pytest.param(
            Z(2026, 1, 7, 22),
            0,
            "hours",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 1, 8, 14),
            id="at-closing",
        ),
        # Friday 18:00 + 1h: Saturday and Sunday are not allowed, so Monday 09:00.
        pytest.param(
            Z(2026, 1, 9, 23),
            1,
            "hours",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 1, 12, 14),
            id="friday-evening-to-monday",
        ),
        # Friday 10:00 + 1 day = Saturday 10:00: weekdays only, so Monday 09:00.
        pytest.param(
            Z(2026, 1, 9, 15),
            1,
            "days",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 1, 12, 14),
            id="days-delay-across-weekend",
        ),
        # Saturday 10:00, no delay, weekdays at any hour: Monday 00:00 EST.
        pytest.param(
            Z(2026, 1, 10, 15),
            0,
            "hours",
            (WEEKDAYS, None, None),
            NY,
            Z(2026, 1, 12, 5),
            id="days-only-window",
        ),
        pytest.param(
            Z(2026, 1, 7, 3), 0, "hours", (WEEKDAYS, None, None), NY, Z(2026, 1, 7, 3), id="days-only-inside"
        ),
        # Every day 09:00-17:00, Saturday 18:00: Sunday 09:00.
        pytest.param(
            Z(2026, 1, 10, 23),
            0,
            "hours",
            ([], "09:00", "17:00"),
            NY,
            Z(2026, 1, 11, 14),
            id="hours-only-window",
        ),
        # 22:00-06:00 every day.
        pytest.param(
            Z(2026, 1, 7, 8),
            0,
            "hours",
            ([], "22:00", "06:00"),
            NY,
            Z(2026, 1, 7, 8),
            id="midnight-inside-after",
        ),
        pytest.param(
            Z(2026, 1, 7, 4),
            0,
            "hours",
            ([], "22:00", "06:00"),
            NY,
            Z(2026, 1, 7, 4),
            id="midnight-inside-before",
        ),
        # Wed 12:00: opens Wed 22:00 EST = Thu 03:00Z.
        pytest.param(
            Z(2026, 1, 7, 17), 0, "hours", ([], "22:00", "06:00"), NY, Z(2026, 1, 8, 3), id="midnight-outside"
        ),
        pytest.param(
            Z(2026, 1, 7, 11),
            0,
            "hours",
            ([], "22:00", "06:00"),
            NY,
            Z(2026, 1, 8, 3),
            id="midnight-at-closing",
        ),
        # A Friday-only 22:00-06:00 window belongs to Friday: it covers Saturday 02:00...
        pytest.param(
            Z(2026, 1, 10, 7),
            0,
            "hours",
            (["fri"], "22:00", "06:00"),
            NY,
            Z(2026, 1, 10, 7),
            id="fri-night-sat",
        ),
        # ...but not Friday 02:00 (that is Thursday's night): wait for Friday 22:00.
        pytest.param(
            Z(2026, 1, 9, 7),
            0,
            "hours",
            (["fri"], "22:00", "06:00"),
            NY,
            Z(2026, 1, 10, 3),
            id="fri-night-fri-am",
        ),
        # Saturday 07:00: a week to the next Friday 22:00 (Jan 16 22:00 EST).
        pytest.param(
            Z(2026, 1, 10, 12), 0, "hours", (["fri"], "22:00", "06:00"), NY, Z(2026, 1, 17, 3), id="next-week"
        ),
        # Opening 02:30 on Mar 8 does not exist in New York: shifted by the gap, 03:30 EDT.
        pytest.param(
            Z(2026, 3, 8, 6), 0, "hours", ([], "02:30", "04:00"), NY, Z(2026, 3, 8, 7, 30), id="ny-start-in-gap"
        ),
        # Opening 01:30 on Mar 29 does not exist in London: 02:30 BST = 01:30Z.
        pytest.param(
            Z(2026, 3, 29, 0),
            0,
            "hours",
            ([], "01:30", "03:00"),
            LDN,
            Z(2026, 3, 29, 1, 30),
            id="london-start-in-gap",
        ),
        pytest.param(
            Z(2026, 3, 28, 1, 45),
            0,
            "hours",
            ([], "01:30", "03:00"),
            LDN,
            Z(2026, 3, 28, 1, 45),
            id="london-day-before",
        ),
        # 02:10-02:50 lies wholly in the gap on Mar 8: both ends shift by the gap, 03:10-03:50 EDT.
        pytest.param(
            Z(2026, 3, 8, 6), 0, "hours", ([], "02:10", "02:50"), NY, Z(2026, 3, 8, 7, 10), id="window-in-gap"
        ),
        # 01:00-02:30 on Mar 8 closes at 03:30 EDT (07:30Z): 01:30 EST is inside...
        pytest.param(
            Z(2026, 3, 8, 6, 30),
            0,
            "hours",
            ([], "01:00", "02:30"),
            NY,
            Z(2026, 3, 8, 6, 30),
            id="end-in-gap-in",
        ),
        # ...so is 03:00 EDT...
        pytest.param(
            Z(2026, 3, 8, 7), 0, "hours", ([], "01:00", "02:30"), NY, Z(2026, 3, 8, 7), id="end-in-gap-still-in"
        ),
        # ...03:30 EDT is not: Mar 9 01:00 EDT.
        pytest.param(
            Z(2026, 3, 8, 7, 30), 0, "hours", ([], "01:00", "02:30"), NY, Z(2026, 3, 9, 5), id="end-in-gap-out"
        ),
        # Opening 01:30 on Nov 1 happens twice: the first, 01:30 EDT.
        pytest.param(
            Z(2026, 11, 1, 4),
            0,
            "hours",
            ([], "01:30", "03:00"),
            NY,
            Z(2026, 11, 1, 5, 30),
            id="start-in-overlap",
        ),
        # 00:00-01:30 on Nov 1 closes at the first 01:30 (EDT): the second 01:15 (EST) is outside.
        pytest.param(
            Z(2026, 11, 1, 6, 15),
            0,
            "hours",
            ([], "00:00", "01:30"),
            NY,
            Z(2026, 11, 2, 5),
            id="end-in-overlap",
        ),
        # Weekdays across the DST weekend: Fri Mar 6 18:00 EST -> Mon Mar 9 09:00 EDT.
        pytest.param(
            Z(2026, 3, 6, 23),
            0,
            "hours",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 3, 9, 13),
            id="ny-weekdays-dst-weekend",
        ),
        # Fri Mar 27 18:00 GMT -> Mon Mar 30 09:00 BST.
        pytest.param(
            Z(2026, 3, 27, 18),
            0,
            "hours",
            (WEEKDAYS, "09:00", "17:00"),
            LDN,
            Z(2026, 3, 30, 8),
            id="london-weekdays-dst-weekend",
        ),
        # Thu Mar 5 10:00 EST + 3 days = Sun Mar 8 10:00 EDT -> Mon Mar 9 09:00 EDT.
        pytest.param(
            Z(2026, 3, 5, 15),
            3,
            "days",
            (WEEKDAYS, "09:00", "17:00"),
            NY,
            Z(2026, 3, 9, 13),
            id="days-delay-weekend-dst",
        ),
    ],
)
def test_delay_until_with_window(
    now: datetime, amount: int, unit: str, window: tuple, tz: str, expected: datetime
) -> None:
    result = delay_until(now, amount=amount, unit=unit, window=AdvanceWindow.parse(*window), tz=tz)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("args", "days", "start", "end"),
    [
        ((["mon", "Tue", "WEDNESDAY"], "09:00", "17:00"), {0, 1, 2}, time(9), time(17)),
        (([], None, None), set(), None, None),
        ((None, "22:00", "06:00"), set(), time(22), time(6)),
        ((["sun", "sat", "sun"], "9:30", "23:59"), {5, 6}, time(9, 30), time(23, 59)),
    ],
)
def test_window_parse(args: tuple, days: set[int], start: time | None, end: time | None) -> None:
    window = AdvanceWindow.parse(*args)
    assert window == AdvanceWindow(frozenset(days), start, end)


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((["mon", "funday"], "09:00", "17:00"), "steps[0].window.days[1]"),
        ((["mon", 1], "09:00", "17:00"), "steps[0].window.days[1]"),
        (("mon", "09:00", "17:00"), "steps[0].window.days"),
        ((WEEKDAYS, "9am", "17:00"), "steps[0].window.start"),
        ((WEEKDAYS, "24:00", "17:00"), "steps[0].window.start"),
        ((WEEKDAYS, 900, "17:00"), "steps[0].window.start"),
        ((WEEKDAYS, "09:00", "17:60"), "steps[0].window.end"),
        ((WEEKDAYS, "09:00", None), "steps[0].window.end"),
        ((WEEKDAYS, None, "17:00"), "steps[0].window.start"),
        ((WEEKDAYS, "09:00", "09:00"), "steps[0].window.end"),
    ],
)
def test_window_parse_errors_name_the_field(args: tuple, path: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        AdvanceWindow.parse(*args, path_prefix="steps[0].window")
    assert field_of(excinfo) == path


def test_window_parse_without_prefix() -> None:
    with pytest.raises(ValidationError) as excinfo:
        AdvanceWindow.parse([], "nope", "17:00")
    assert field_of(excinfo) == "start"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": frozenset({7})},
        {"days": frozenset({-1})},
        {"start": time(9)},
        {"start": time(9), "end": time(9)},
    ],
)
def test_window_constructor_validates(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        AdvanceWindow(**kwargs)


# -------------------------------------------------------------------------------- appointment offsets


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param((0, 0, 0, 90), (0, 0, 1, 30), id="90-minutes"),
        pytest.param((0, 0, 0, 59), (0, 0, 0, 59), id="59-minutes"),
        pytest.param((0, 0, 30, 0), (0, 1, 6, 0), id="30-hours"),
        pytest.param((0, 0, 24, 0), (0, 1, 0, 0), id="24-hours"),
        pytest.param((0, 45, 0, 0), (0, 45, 0, 0), id="45-days-stay-days"),
        pytest.param((0, 30, 0, 0), (0, 30, 0, 0), id="30-days-stays"),
        pytest.param((0, 31, 0, 0), (0, 31, 0, 0), id="31-days"),
        pytest.param((0, 60, 0, 0), (0, 60, 0, 0), id="60-days"),
        pytest.param((0, 0, 0, 44640), (0, 31, 0, 0), id="31-days-of-minutes-cascade"),
        pytest.param((0, 30, 23, 60), (0, 31, 0, 0), id="carry-ripples-up-to-days-only"),
        pytest.param((9999, 30, 23, 59), (9999, 30, 23, 59), id="max"),
        pytest.param((0, 0, 0, 0), (0, 0, 0, 0), id="zero"),
    ],
)
def test_offset_normalize(given: tuple[int, int, int, int], expected: tuple[int, int, int, int]) -> None:
    months, days, hours, minutes = given
    offset = AppointmentOffset.normalize(months=months, days=days, hours=hours, minutes=minutes)
    assert (offset.months, offset.days, offset.hours, offset.minutes) == expected


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"months": 10000}, "months"),
        ({"days": 365_001}, "days"),
        ({"minutes": -1}, "minutes"),
        ({"days": -1}, "days"),
        ({"days": 1.5}, "days"),
        ({"hours": "3"}, "hours"),
        ({"months": True}, "months"),
        ({"days": -1, "path_prefix": "steps[2].offset"}, "steps[2].offset.days"),
        ({"months": 10000, "path_prefix": "steps[2].offset"}, "steps[2].offset.months"),
    ],
)
def test_offset_normalize_rejects(kwargs: dict, path: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        AppointmentOffset.normalize(**kwargs)
    assert field_of(excinfo) == path


@pytest.mark.parametrize("kwargs", [{"days": -1}, {"minutes": 1.5}, {"hours": True}])
def test_offset_constructor_requires_whole_non_negative_numbers(kwargs: dict) -> None:
    with pytest.raises(ValidationError):
        AppointmentOffset(**kwargs)


def test_offset_constructor_keeps_values_as_given() -> None:
    # Only normalize() rolls over; the constructor is how code asks for e.g. 24 elapsed hours.
    assert AppointmentOffset(hours=24) != AppointmentOffset.normalize(hours=24) == AppointmentOffset(days=1)


def off(months: int = 0, days: int = 0, hours: int = 0, minutes: int = 0) -> AppointmentOffset:
    return AppointmentOffset(months, days, hours, minutes)


@pytest.mark.parametrize(
    ("start", "tz", "direction", "offset", "expected"),
    [
        pytest.param(Z(2026, 3, 8, 13), NY, "exact", off(days=3), Z(2026, 3, 8, 13), id="exact"),
        # Appointment 09:00 EDT on Mar 8, the first morning of DST. 1 day before = 09:00 EST Mar 7:
        # 23 real hours.
        pytest.param(Z(2026, 3, 8, 13), NY, "before", off(days=1), Z(2026, 3, 7, 14), id="1-day-before-dst"),
        # 24 hours before the same appointment is absolute: 08:00 EST, an hour off "1 day".
        pytest.param(Z(2026, 3, 8, 13), NY, "before", off(hours=24), Z(2026, 3, 7, 13), id="24h-before-dst"),
        # Via roll-over, 24 hours becomes 1 day and takes the calendar meaning.
        pytest.param(
            Z(2026, 3, 8, 13),
            NY,
            "before",
            AppointmentOffset.normalize(hours=24),
            Z(2026, 3, 7, 14),
            id="24h-rolled-to-day",
        ),
        # 09:00 EDT Monday Mar 9 - 1 day = 09:00 EDT Sunday: both after the change, 24 real hours.
        pytest.param(
            Z(2026, 3, 9, 13), NY, "before", off(days=1), Z(2026, 3, 8, 13), id="1-day-before-mar-9"
        ),
        # 09:00 EST Nov 1 - 1 day = 09:00 EDT Oct 31: 25 real hours; 24 hours before = 10:00 EDT.
        pytest.param(
            Z(2026, 11, 1, 14), NY, "before", off(days=1), Z(2026, 10, 31, 13), id="1-day-before-fall"
        ),
        pytest.param(
            Z(2026, 11, 1, 14), NY, "before", off(hours=24), Z(2026, 10, 31, 14), id="24h-before-fall"
        ),
        # 09:00 EST Mar 7 + 1 day = 09:00 EDT Mar 8.
        pytest.param(Z(2026, 3, 7, 14), NY, "after", off(days=1), Z(2026, 3, 8, 13), id="1-day-after-dst"),
        # London: 09:00 BST Mar 29 - 1 day = 09:00 GMT Mar 28.
        pytest.param(
            Z(2026, 3, 29, 8), LDN, "before", off(days=1), Z(2026, 3, 28, 9), id="london-1-day-before"
        ),
        # 09:00 GMT Oct 25 - 1 day = 09:00 BST Oct 24.
        pytest.param(Z(2026, 10, 25, 9), LDN, "before", off(days=1), Z(2026, 10, 24, 8), id="london-fall"),
        # Month ends clamp: Jan 31 10:00 EST + 1 month = Feb 28 10:00 EST.
        pytest.param(
            Z(2026, 1, 31, 15), NY, "after", off(months=1), Z(2026, 2, 28, 15), id="jan-31-plus-month"
        ),
        pytest.param(Z(2028, 1, 31, 15), NY, "after", off(months=1), Z(2028, 2, 29, 15), id="leap-year"),
        # Mar 31 09:00 EDT - 1 month = Feb 28 09:00 EST.
        pytest.param(
            Z(2026, 3, 31, 13), NY, "before", off(months=1), Z(2026, 2, 28, 14), id="mar-31-minus-month"
        ),
        # Feb 15 10:00 EST + 1 month = Mar 15 10:00 EDT.
        pytest.param(
            Z(2026, 2, 15, 15), NY, "after", off(months=1), Z(2026, 3, 15, 14), id="month-across-dst"
        ),
        # Mar 8 2026 09:00 EDT - 12 months = Mar 8 2025 09:00 EST (DST began Mar 9 in 2025).
        pytest.param(
            Z(2026, 3, 8, 13), NY, "before", off(months=12), Z(2025, 3, 8, 14), id="12-months-before"
        ),
        # Calendar part first, then absolute: Jan 10 09:00 EST + 1 month 2 days = Feb 12 09:00 EST,
        # + 3h15m = 12:15 EST.
        pytest.param(
            Z(2026, 1, 10, 14), NY, "after", off(1, 2, 3, 15), Z(2026, 2, 12, 17, 15), id="all-units-after"
        ),
        # 2h30m before 09:00 EDT Mar 8 = 05:30 EDT.
        pytest.param(
            Z(2026, 3, 8, 13), NY, "before", off(hours=2, minutes=30), Z(2026, 3, 8, 10, 30), id="hm"
        ),
        # 8 hours before 10:00 EDT Mar 8 = 01:00 EST: 9 hours on the wall clock.
        pytest.param(Z(2026, 3, 8, 14), NY, "before", off(hours=8), Z(2026, 3, 8, 6), id="hours-across-gap"),
        # 02:30 EST Mar 7 + 1 day lands in the gap: shifted by its hour, 03:30 EDT.
        pytest.param(Z(2026, 3, 7, 7, 30), NY, "after", off(days=1), Z(2026, 3, 8, 7, 30), id="lands-in-gap"),
        # London 01:30 GMT Mar 28 + 1 day lands in the gap: 02:30 BST.
        pytest.param(Z(2026, 3, 28, 1, 30), LDN, "after", off(days=1), Z(2026, 3, 29, 1, 30), id="london-gap"),
        # "1 day before" 02:30 EDT on Mar 9 2026 lands in the Mar 8 gap: 03:30 EDT Mar 8.
        pytest.param(Z(2026, 3, 9, 6, 30), NY, "before", off(days=1), Z(2026, 3, 8, 7, 30), id="day-before-in-gap"),
        # 45 days before is 45 calendar days, never 1 month 15 days.
        pytest.param(Z(2026, 5, 20, 13), NY, "before", off(days=45), Z(2026, 4, 5, 13), id="45-days-before"),
        # 01:30 EST Nov 2 - 1 day = 01:30 Nov 1, ambiguous: the first (EDT).
        pytest.param(
            Z(2026, 11, 2, 6, 30), NY, "before", off(days=1), Z(2026, 11, 1, 5, 30), id="lands-in-overlap"
        ),
        # The start's own tzinfo does not matter, only the appointment zone: Tokyo has no DST.
        pytest.param(
            datetime(2026, 3, 8, 9, tzinfo=ZoneInfo(NY)),
            "Asia/Tokyo",
            "before",
            off(days=1),
            Z(2026, 3, 7, 13),
            id="zone-is-tz-arg",
        ),
    ],
)
def test_appointment_wait_target(
    start: datetime, tz: str, direction: str, offset: AppointmentOffset, expected: datetime
) -> None:
    result = appointment_wait_target(start, tz, direction, offset)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("args", "path"),
    [
        ((Z(2026, 3, 8, 13), NY, "around", off(days=1)), "direction"),
        ((Z(2026, 3, 8, 13), "Nowhere/Land", "before", off(days=1)), "tz"),
        ((Z(9500, 1, 1, 12), NY, "after", off(months=9999)), "offset"),  # past year 9999
    ],
)
def test_appointment_wait_target_rejects(args: tuple, path: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        appointment_wait_target(*args)
    assert field_of(excinfo) == path


# ------------------------------------------------------------------------------------------- zones


def test_parse_tz_known() -> None:
    assert parse_tz("Europe/London", "settings.timezone") == ZoneInfo("Europe/London")


@pytest.mark.parametrize(
    "name", ["Mars/Olympus_Mons", "", "   ", "../etc/passwd", "/etc/localtime", "America", None]
)
def test_parse_tz_unknown(name: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_tz(name, "settings.timezone")  # type: ignore[arg-type]
    assert field_of(excinfo) == "settings.timezone"


@pytest.mark.parametrize(
    ("wall", "tz", "expected"),
    [
        (datetime(2026, 3, 8, 2, 30), NY, Z(2026, 3, 8, 7, 30)),  # gap -> shifted an hour, 03:30 EDT
        (datetime(2026, 3, 8, 2, 0), NY, Z(2026, 3, 8, 7)),  # gap start -> 03:00 EDT
        (datetime(2026, 3, 8, 3, 0), NY, Z(2026, 3, 8, 7)),  # gap end, a real time
        (datetime(2026, 3, 8, 1, 59, 59), NY, Z(2026, 3, 8, 6, 59, 59)),
        (datetime(2026, 11, 1, 1, 30), NY, Z(2026, 11, 1, 5, 30)),  # overlap -> first (EDT)
        (datetime(2026, 11, 1, 1, 30, fold=1), NY, Z(2026, 11, 1, 5, 30)),  # fold is ignored
        (datetime(2026, 3, 29, 1, 30), LDN, Z(2026, 3, 29, 1, 30)),  # gap -> 02:30 BST
        (datetime(2027, 3, 14, 2, 30), NY, Z(2027, 3, 14, 7, 30)),  # 2027 gap -> 03:30 EDT
        (datetime(2027, 3, 28, 1, 15), LDN, Z(2027, 3, 28, 1, 15)),  # 2027 gap -> 02:15 BST
        (datetime(2027, 11, 7, 1, 30), NY, Z(2027, 11, 7, 5, 30)),  # 2027 overlap -> first (EDT)
        (datetime(2027, 10, 31, 1, 45), LDN, Z(2027, 10, 31, 0, 45)),  # 2027 overlap -> first (BST)
        (datetime(2026, 10, 25, 1, 30), LDN, Z(2026, 10, 25, 0, 30)),  # overlap -> first (BST)
        (datetime(2026, 7, 1, 12, 0), "Asia/Kolkata", Z(2026, 7, 1, 6, 30)),
    ],
)
def test_local_to_utc(wall: datetime, tz: str, expected: datetime) -> None:
    assert local_to_utc(wall, tz) == expected


def test_module_never_reads_the_clock() -> None:
    source = inspect.getsource(timecalc)
    for forbidden in (".now(", ".today(", ".utcnow(", "time.time(", "monotonic("):
        assert forbidden not in source
