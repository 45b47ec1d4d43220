"""The booking rules every path shares (issue #10, "what is wrong today"): round robin skips busy
hosts, a host is never double-booked, weekly hours and notice are enforced, the past is refused
unless recorded as past (and then nothing is sent). On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from automations.booking import appointments, availability
from automations.errors import Conflict, ValidationError
from automations.store.models import (
    Appointment,
    AppointmentHost,
    BusyBlock,
    Calendar,
    CalendarMember,
    Location,
    Message,
)
from tests.factories import book, publish
from tests.test_api_fixtures import confirmation_doc

# START (conftest) is Monday 2026-11-02 14:00 UTC = 09:00 in New York.
WEEKDAYS_9_TO_5 = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
TUESDAY_10_NY = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


def _calendar(session, world, **changes) -> Calendar:
    cal = session.get(Calendar, world.calendar_id)
    for key, value in changes.items():
        setattr(cal, key, value)
    session.flush()
    return cal


def test_round_robin_skips_a_busy_host_and_rotates(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        _calendar(s, world, appointments_per_slot=1)
        first = book(s, world, now, start=TUESDAY_10_NY, assigned_user_id=world.alice_id)
        second = book(s, world, now, start=TUESDAY_10_NY)  # Alice is busy: Bob, not "slot full"
        assert (first.assigned_user_id, second.assigned_user_id) == (world.alice_id, world.bob_id)
        with pytest.raises(Conflict) as info:
            book(s, world, now, start=TUESDAY_10_NY)
        assert "start_time" in info.value.fields
        # Later slots rotate: each gets whoever has fewer upcoming bookings (tie: member order).
        hosts = [book(s, world, now, start=TUESDAY_10_NY + timedelta(hours=h)).assigned_user_id for h in (1, 2, 3, 4)]
        assert hosts == [world.alice_id, world.bob_id, world.alice_id, world.bob_id]


def test_round_robin_priority_goes_first_when_free(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        cal = _calendar(s, world, appointments_per_slot=1)
        next(m for m in cal.members if m.user_id == world.bob_id).priority = 5
        s.flush()
        picks = [book(s, world, now, start=TUESDAY_10_NY + timedelta(hours=h)).assigned_user_id for h in (0, 1)]
        assert picks == [world.bob_id, world.bob_id]
        # Bob busy at 10:00: Alice takes the second booking there.
        assert book(s, world, now, start=TUESDAY_10_NY).assigned_user_id == world.alice_id


def test_same_host_cannot_overlap_on_any_calendar(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        book(s, world, now, start=TUESDAY_10_NY, assigned_user_id=world.alice_id)
        with pytest.raises(Conflict, match="busy"):
            book(s, world, now, start=TUESDAY_10_NY + timedelta(minutes=10), assigned_user_id=world.alice_id)
        personal = Calendar(location_id=world.location_id, name="Alice 1:1", slug="alice", kind="personal",
                            timezone="America/New_York", created_at=now,
                            members=[CalendarMember(user_id=world.alice_id, position=0)])
        s.add(personal)
        s.flush()
        with pytest.raises(Conflict, match="busy"):
            book(s, world, now, start=TUESDAY_10_NY + timedelta(minutes=20), calendar_id=personal.id)
        # Back to back is fine.
        assert book(s, world, now, start=TUESDAY_10_NY + timedelta(minutes=30), calendar_id=personal.id)


def test_buffers_widen_busy_time(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        _calendar(s, world, buffer_after_minutes=15, appointments_per_slot=1)
        book(s, world, now, start=TUESDAY_10_NY, assigned_user_id=world.alice_id)
        with pytest.raises(Conflict):
            book(s, world, now, start=TUESDAY_10_NY - timedelta(minutes=40), assigned_user_id=world.alice_id)
        assert book(s, world, now, start=TUESDAY_10_NY + timedelta(minutes=45), assigned_user_id=world.alice_id)


def test_weekly_hours_are_enforced_unless_staff_override(factory, world, clock):
    now = clock.now()
    night = datetime(2026, 11, 3, 8, 11, tzinfo=UTC)  # 03:11 in New York
    with factory() as s, s.begin():
        _calendar(s, world, availability=WEEKDAYS_9_TO_5, appointments_per_slot=1)
        with pytest.raises(Conflict, match="outside the calendar's hours"):
            book(s, world, now, start=night)
        with pytest.raises(Conflict, match="outside"):  # ends after 17:00
            book(s, world, now, start=datetime(2026, 11, 3, 21, 45, tzinfo=UTC))
        appt = book(s, world, now, start=night, override_hours=True)
        assert appt.start_at == night
        # The override skips hours, never overlaps.
        with pytest.raises(Conflict, match="busy"):
            book(s, world, now, start=night + timedelta(minutes=10), override_hours=True,
                 assigned_user_id=appt.assigned_user_id)


def test_member_hours_in_their_own_zone_and_date_overrides(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        cal = _calendar(s, world, availability=WEEKDAYS_9_TO_5, appointments_per_slot=1)
        bob = next(m for m in cal.members if m.user_id == world.bob_id)
        bob.availability = {"tue": [["13:00", "14:00"]]}  # Chicago time: 14:00-15:00 in New York
        alice = next(m for m in cal.members if m.user_id == world.alice_id)
        alice.date_overrides = {"2026-11-03": []}  # Alice's day off
        s.flush()
        two_pm_ny = datetime(2026, 11, 3, 19, 0, tzinfo=UTC)
        assert book(s, world, now, start=two_pm_ny).assigned_user_id == world.bob_id
        with pytest.raises(Conflict):
            book(s, world, now, start=TUESDAY_10_NY)  # Bob not working, Alice off
        slots = availability.slots(s, cal, start=datetime(2026, 11, 3, 5, tzinfo=UTC),
                                   end=datetime(2026, 11, 4, 5, tzinfo=UTC), now=now)
        assert [(x.start, x.hosts) for x in slots] == [(two_pm_ny + timedelta(minutes=30), [world.bob_id])]


def test_past_is_refused_unless_recorded_and_then_nothing_is_sent(factory, world, clock, runtime):
    now = clock.now()
    with factory() as s, s.begin():
        publish(s, world, confirmation_doc(), now)
        with pytest.raises(ValidationError) as info:
            book(s, world, now, start=datetime(2020, 1, 1, 15, tzinfo=UTC))
        assert "start_time" in info.value.fields
        with pytest.raises(ValidationError) as info:
            book(s, world, now, start=now + timedelta(days=1), record_past=True)
        assert "record_past" in info.value.fields
        past = book(s, world, now, start=datetime(2020, 1, 1, 15, tzinfo=UTC), record_past=True)
        past_id = past.id
        assert past.record_past and past.meeting_id is None
    runtime.tick(clock.now())
    with factory() as s:
        assert s.scalars(select(Message).where(Message.appointment_id == past_id)).all() == []
        appt = s.get(Appointment, past_id)
        with pytest.raises(ValidationError):
            appointments.reschedule(s, appt, start_at=now - timedelta(days=1), end_at=None, modified_by="api", now=now)


def test_notice_and_booking_window(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        _calendar(s, world, min_notice_minutes=120, booking_window_days=14)
        with pytest.raises(Conflict, match="notice"):
            book(s, world, now, start=now + timedelta(minutes=60))
        with pytest.raises(Conflict, match="14 days"):
            book(s, world, now, start=now + timedelta(days=20))
        assert book(s, world, now, start=now + timedelta(hours=3))


def test_reschedule_follows_the_same_rules(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        _calendar(s, world, appointments_per_slot=1)
        a = book(s, world, now, start=TUESDAY_10_NY, assigned_user_id=world.alice_id)
        book(s, world, now, start=TUESDAY_10_NY + timedelta(hours=1), assigned_user_id=world.alice_id)
        with pytest.raises(Conflict):
            appointments.reschedule(s, a, start_at=TUESDAY_10_NY + timedelta(minutes=50), end_at=None,
                                    modified_by="api", now=now)
        assert appointments.reschedule(s, a, start_at=TUESDAY_10_NY + timedelta(minutes=15), end_at=None,
                                       modified_by="api", now=now)  # overlapping only itself


def test_collective_needs_every_host_and_blocks_them_all(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        cal = _calendar(s, world, kind="collective", appointments_per_slot=1)
        appt = book(s, world, now, start=TUESDAY_10_NY)
        assert appt.assigned_user_id == world.alice_id  # hosts the one meeting
        assert s.scalars(select(AppointmentHost.user_id).where(AppointmentHost.appointment_id == appt.id)).all() == [
            world.bob_id]
        # Bob is busy at 10:00 now, on every calendar: a booking for him alone is refused.
        loc = s.get(Location, world.location_id)
        solo = Calendar(location_id=loc.id, name="Bob", slug="bob", kind="personal", timezone="America/New_York",
                        created_at=now, members=[CalendarMember(user_id=world.bob_id, position=0)])
        s.add(solo)
        s.flush()
        with pytest.raises(Conflict):
            book(s, world, now, start=TUESDAY_10_NY, calendar_id=solo.id)
        book(s, world, now, start=TUESDAY_10_NY + timedelta(hours=2), calendar_id=solo.id)
        with pytest.raises(Conflict, match="collective"):
            book(s, world, now, start=TUESDAY_10_NY + timedelta(hours=2), calendar_id=cal.id)


def test_outside_busy_blocks_block_slots_and_bookings(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        cal = _calendar(s, world, availability=WEEKDAYS_9_TO_5, appointments_per_slot=1)
        for user in (world.alice_id, world.bob_id):
            s.add(BusyBlock(user_id=user, source="google", external_id=f"ev-{user}", start_at=TUESDAY_10_NY,
                            end_at=TUESDAY_10_NY + timedelta(hours=1), updated_at=now))
        s.flush()
        with pytest.raises(Conflict, match="busy"):
            book(s, world, now, start=TUESDAY_10_NY + timedelta(minutes=30))
        day = availability.slots(s, cal, start=datetime(2026, 11, 3, 5, tzinfo=UTC),
                                 end=datetime(2026, 11, 4, 5, tzinfo=UTC), now=now)
        starts = [x.start for x in day]
        assert TUESDAY_10_NY not in starts and TUESDAY_10_NY + timedelta(minutes=30) not in starts
        assert starts[0] == TUESDAY_10_NY - timedelta(hours=1) and TUESDAY_10_NY + timedelta(hours=1) in starts
        assert len(starts) == 16 - 2


def test_unassigned_calendar_counts_capacity_per_slot(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        static = s.get(Calendar, world.static_calendar_id)
        static.appointments_per_slot = 2
        s.flush()
        for _ in range(2):
            assert book(s, world, now, start=TUESDAY_10_NY, calendar_id=static.id).assigned_user_id is None
        with pytest.raises(Conflict, match="full"):
            book(s, world, now, start=TUESDAY_10_NY, calendar_id=static.id)


def test_hours_are_validated_with_field_paths():
    with pytest.raises(ValidationError) as info:
        availability.parse_weekly({"mon": [["09:00", "08:00"]]})
    assert list(info.value.fields) == ["availability.mon[0][1]"]
    with pytest.raises(ValidationError) as info:
        availability.parse_weekly({"funday": []})
    assert list(info.value.fields) == ["availability.funday"]
    with pytest.raises(ValidationError) as info:
        availability.parse_overrides({"2026-02-30": []})
    assert list(info.value.fields) == ["date_overrides.2026-02-30"]
    assert availability.parse_weekly({"sat": [["10:00", "24:00"]]}) == {"sat": [["10:00", "24:00"]]}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's plans; PostgreSQL's follow its statistics
def test_counting_a_slots_bookings_reads_only_the_appointment_indexes(factory, world, clock):
    """A class or a busy host's day means counting many bookings per booking: the busy-time query must
    read index entries only (SQLite's plan says COVERING INDEX), whether it counts a host's or an
    unassigned calendar's slot. A reschedule leaves its own appointment out by id, which only the table
    holds, and still never collides with itself."""
    engine = factory.kw["bind"]
    seen: list[tuple[str, tuple]] = []

    def busy_queries(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if "count(*)" in statement and "appointments.end_at >" in statement:  # (the overlap test)
            seen.append((statement, parameters))

    now = clock.now()
    with factory() as s, s.begin():
        _calendar(s, world, appointments_per_slot=5)
        static = s.get(Calendar, world.static_calendar_id)
        static.appointments_per_slot = 5
        s.flush()
        event.listen(engine, "before_cursor_execute", busy_queries)
        try:
            first = book(s, world, now, start=TUESDAY_10_NY, assigned_user_id=world.alice_id)
            book(s, world, now, start=TUESDAY_10_NY, calendar_id=static.id)
            booked = list(seen)
            assert appointments.reschedule(s, first, start_at=TUESDAY_10_NY + timedelta(minutes=15), end_at=None,
                                           modified_by="api", now=now)
        finally:
            event.remove(engine, "before_cursor_execute", busy_queries)
        raw = s.connection().connection.dbapi_connection
        assert len(booked) == 2
        for statement, parameters in booked:
            plan = [row[3] for row in raw.execute("EXPLAIN QUERY PLAN " + statement, parameters)]
            on_appointments = [step for step in plan if step.startswith("SEARCH appointments USING")
                               and "(id=?)" not in step]  # (the co-host join looks rows up by id)
            assert on_appointments and all("COVERING INDEX" in step for step in on_appointments), plan
        assert "appointments.id !=" in seen[-1][0] and "appointments.id !=" not in booked[0][0]


def test_round_robin_weighs_the_calendars_nearest_upcoming_appointments(factory, world, clock, monkeypatch):
    """Fewest upcoming appointments wins; what counts is the calendar's nearest ``ROTATION_WINDOW`` of them,
    so a calendar with tens of thousands does not make every booking count them all."""
    now = clock.now()
    with factory() as s, s.begin():
        _calendar(s, world, appointments_per_slot=1)
        for day in (1, 2):  # Alice: two soon
            book(s, world, now, start=TUESDAY_10_NY + timedelta(days=day), assigned_user_id=world.alice_id)
        for day in (20, 21, 22):  # Bob: three, later
            book(s, world, now, start=TUESDAY_10_NY + timedelta(days=day), assigned_user_id=world.bob_id)
        slot = TUESDAY_10_NY + timedelta(days=7)
        cal = s.get(Calendar, world.calendar_id)
        free = availability.bookable_hosts(s, cal, slot, slot + timedelta(minutes=30), now=now)
        assert appointments._rotation(s, cal, free, now) == world.alice_id  # all counted: Alice 2, Bob 3
        monkeypatch.setattr(appointments, "ROTATION_WINDOW", 2)
        assert appointments._rotation(s, cal, free, now) == world.bob_id  # the nearest two are both Alice's
        monkeypatch.setattr(appointments, "ROTATION_WINDOW", 4)
        assert appointments._rotation(s, cal, free, now) == world.alice_id  # 2 and 2: member order
