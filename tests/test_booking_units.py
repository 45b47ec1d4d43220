"""Small pure pieces of booking: RRULE expansion across DST, .ics escaping and folding, signed links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automations.booking import booking_links, recurrence
from automations.errors import ValidationError
from web.booking import ics


def test_weekly_series_keeps_the_wall_clock_time_across_dst():
    first = datetime(2027, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York (EST)
    starts = recurrence.occurrences("FREQ=WEEKLY;COUNT=3", first, "America/New_York")
    # DST starts on 14 March 2027: 10:00 EDT is 14:00 UTC.
    assert starts == [first, first + timedelta(weeks=1), datetime(2027, 3, 16, 14, 0, tzinfo=UTC)]


@pytest.mark.parametrize("rule", ["FREQ=DAILY", "FREQ=DAILY;COUNT=53", "FREQ=SOMETIMES;COUNT=2", "", "x" * 600])
def test_bad_or_unbounded_rules_are_refused(rule):
    with pytest.raises(ValidationError) as info:
        recurrence.occurrences(rule, datetime(2027, 3, 2, 15, tzinfo=UTC), "UTC")
    assert list(info.value.fields) == ["recurrence"]


def test_ics_escapes_and_folds():
    body = ics.event(uid="a@punctual", start=datetime(2026, 11, 3, 15, tzinfo=UTC),
                     end=datetime(2026, 11, 3, 15, 30, tzinfo=UTC), title="Check-up; bring forms, please",
                     description="Line one\nLine two " + "é" * 80, location="Room 4", cancelled=False,
                     now=datetime(2026, 11, 2, tzinfo=UTC))
    assert "SUMMARY:Check-up\\; bring forms\\, please\r\n" in body
    assert "DTSTART:20261103T150000Z" in body and body.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
    assert "\r\n " in body  # the long description was folded


def test_links_are_bound_to_one_appointment_and_expire():
    token = booking_links.token("secret-1", "appt-1")
    assert booking_links.appointment_id("secret-1", token) == "appt-1"
    assert booking_links.appointment_id("secret-2", token) is None
    assert booking_links.appointment_id("secret-2,secret-1", token) == "appt-1"  # rotated keys still verify
    forged = booking_links.token("secret-1", "appt-2")
    payload, signature = token.split(".")
    assert booking_links.appointment_id("secret-1", f"{forged.split('.')[0]}.{signature}") is None  # swapped id
    end = datetime(2026, 11, 3, 15, 30, tzinfo=UTC)
    assert booking_links.usable(end, end - timedelta(seconds=1)) and not booking_links.usable(end, end)
    links = booking_links.links("https://p.example", "secret-1", "appt-1")
    assert links["cancellation_link"].startswith("https://p.example/book/a/") and links["reschedule_link"].endswith("/reschedule")
