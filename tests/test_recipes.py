"""Every shipped recipe, imported with a mapping and run end to end: book → tick → the right messages
in the outbox at the right times (issue #9). Mapping errors name their JSON path and save nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from automations.booking import appointments
from automations.documents import recipes
from automations.errors import ValidationError
from automations.store.models import Appointment, Location, Workflow
from tests.factories import book, messages

START = datetime(2026, 11, 5, 15, 0, tzinfo=UTC)  # Thursday 10:00 New York


def Z(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def install(factory, world, clock, slug, mapping=None):
    with factory() as s, s.begin():
        return recipes.import_recipe(s, world.location_id, slug, mapping or {}, clock.now(), publish=True)


def sent(factory) -> list[tuple[str, str, datetime]]:
    """(step, channel, queued at) for every message, in time order (then by step id)."""
    with factory() as s:
        return sorted(((m.step_id, m.channel, m.created_at) for m in messages(s)), key=lambda t: (t[2], t[0]))


def at(clock, runtime, when):
    clock.set(when)
    runtime.tick()


def change(factory, clock, appt_id, status):
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, appt_id), status, modified_by="user", now=clock.now())


def test_six_recipes_ship_with_categories_and_placeholders():
    found = {r.slug: r for r in recipes.all_recipes()}
    assert set(found) >= {"appointment-confirmation-reminders", "no-show-follow-up", "cancellation-rebook",
                          "reschedule-notice", "staff-daily-digest", "thank-you-review"}
    for r in found.values():
        assert r.title and r.description and r.category in recipes.CATEGORIES
        assert any(p["kind"] == "calendars" for p in r.placeholders)
        assert r.detail()["workflow"]["steps"]


def test_confirmation_and_reminders_with_the_zoom_link(factory, runtime, clock, world):
    install(factory, world, clock, "appointment-confirmation-reminders",
            {"calendars": [world.calendar_id], "sender": {"from_name": "Test Clinic", "from_email": "hi@clinic.example"},
             "host_users": [world.alice_id]})
    with factory() as s, s.begin():
        book(s, world, clock.now(), start=START, status="confirmed")
        book(s, world, clock.now(), start=START, status="confirmed", calendar_id=world.static_calendar_id)  # not mapped
    runtime.tick()
    at(clock, runtime, START - timedelta(days=1))
    at(clock, runtime, START - timedelta(hours=1))
    now = Z(2026, 11, 2, 14)
    assert sent(factory) == [
        ("confirm-email", "email", now), ("confirm-sms", "sms", now), ("notify-host", "in_app", now),
        ("reminder-1-day-email", "email", START - timedelta(days=1)),
        ("reminder-1-day-sms", "sms", START - timedelta(days=1)),
        ("reminder-1-hour-host", "in_app", START - timedelta(hours=1)),
        ("reminder-1-hour-sms", "sms", START - timedelta(hours=1)),
    ]
    with factory() as s:
        email = messages(s, step_id="confirm-email")[0]
        assert email.template["from_name"] == "Test Clinic" and email.status == "sent"
        assert "Join here: https://" in email.body  # the sandbox meeting link, resolved before sending
        assert {m.user_id for m in messages(s, channel="in_app")} == {world.alice_id}


def test_no_show_follow_up(factory, runtime, clock, world):
    install(factory, world, clock, "no-show-follow-up", {"calendars": [world.calendar_id]})
    with factory() as s, s.begin():
        appt = book(s, world, clock.now(), start=Z(2026, 11, 2, 15), status="confirmed")
    runtime.tick()
    at(clock, runtime, Z(2026, 11, 2, 15, 30))
    change(factory, clock, appt.id, "noshow")
    runtime.tick()
    assert sent(factory) == []
    at(clock, runtime, Z(2026, 11, 2, 15, 45))
    at(clock, runtime, Z(2026, 11, 4, 15, 45))  # two days later, inside the weekday 09-17 window
    assert sent(factory) == [
        ("sorry-email", "email", Z(2026, 11, 2, 15, 45)), ("sorry-sms", "sms", Z(2026, 11, 2, 15, 45)),
        ("tell-host", "in_app", Z(2026, 11, 2, 15, 45)), ("nudge-email", "email", Z(2026, 11, 4, 15, 45)),
    ]


def test_cancellation_rebook_invitation(factory, runtime, clock, world):
    install(factory, world, clock, "cancellation-rebook", {"booking_url": "https://clinic.example/book"})
    with factory() as s, s.begin():
        appt = book(s, world, clock.now(), start=START, status="confirmed")
    runtime.tick()
    change(factory, clock, appt.id, "cancelled")
    runtime.tick()
    at(clock, runtime, clock.now() + timedelta(hours=1))
    at(clock, runtime, Z(2026, 11, 3, 15))  # next morning, 10:00 in New York
    assert sent(factory) == [("rebook-email", "email", Z(2026, 11, 2, 15)), ("rebook-sms", "sms", Z(2026, 11, 3, 15))]
    with factory() as s:
        assert "https://clinic.example/book" in messages(s, step_id="rebook-sms")[0].body


def test_reschedule_notice_with_the_new_time_and_link(factory, runtime, clock, world):
    install(factory, world, clock, "reschedule-notice", {"calendars": [world.calendar_id]})
    with factory() as s, s.begin():
        appt = book(s, world, clock.now(), start=START, status="confirmed")
    runtime.tick()
    assert sent(factory) == []
    clock.advance(hours=1)
    with factory() as s, s.begin():
        appointments.reschedule(s, s.get(Appointment, appt.id), start_at=START + timedelta(days=1), end_at=None,
                                modified_by="customer", now=clock.now())
    runtime.tick()
    assert sent(factory) == [("notice-email", "email", clock.now()), ("notice-sms", "sms", clock.now())]
    with factory() as s:
        sms = messages(s, step_id="notice-sms")[0]
        assert "Friday, November 6" in sms.body or "Nov" in sms.body
        assert "Join: https://" in sms.body


def test_staff_morning_notes_arrive_together_at_seven(factory, runtime, clock, world):
    install(factory, world, clock, "staff-daily-digest")
    with factory() as s, s.begin():
        book(s, world, clock.now(), start=START, status="confirmed")  # Thu 10:00
        book(s, world, clock.now(), start=Z(2026, 11, 5, 21), status="confirmed", contact_id=world.eli_id)  # Thu 16:00
        book(s, world, clock.now(), start=Z(2026, 11, 6, 5, 30), status="confirmed")  # Fri 00:30
    runtime.tick()
    at(clock, runtime, Z(2026, 11, 4, 12))  # Wed 07:00 New York
    at(clock, runtime, Z(2026, 11, 5, 12))  # Thu 07:00
    notes = sent(factory)
    assert {n[1] for n in notes} == {"email"}
    assert sorted({n[2] for n in notes}) == [Z(2026, 11, 4, 12), Z(2026, 11, 5, 12)]
    assert sum(n[2] == Z(2026, 11, 4, 12) for n in notes) == 4  # two appointments x two staff
    assert sum(n[2] == Z(2026, 11, 5, 12) for n in notes) == 2  # the Friday 00:30 one, the morning before


def test_thank_you_and_review_request(factory, runtime, clock, world):
    with pytest.raises(ValidationError) as info:
        install(factory, world, clock, "thank-you-review")
    assert info.value.fields == {"mapping.review_url": ["required: Review page link"]}
    install(factory, world, clock, "thank-you-review", {"review_url": "https://g.page/r/clinic/review"})
    with factory() as s, s.begin():
        appt = book(s, world, clock.now(), start=Z(2026, 11, 6, 15), status="confirmed")  # Friday 10:00
    runtime.tick()
    at(clock, runtime, Z(2026, 11, 6, 16))
    change(factory, clock, appt.id, "showed")
    runtime.tick()
    at(clock, runtime, Z(2026, 11, 6, 18))
    at(clock, runtime, Z(2026, 11, 9, 15))  # next weekday morning: Monday 10:00 New York
    assert sent(factory) == [("thanks-email", "email", Z(2026, 11, 6, 18)), ("review-sms", "sms", Z(2026, 11, 9, 15))]
    with factory() as s:
        assert "https://g.page/r/clinic/review" in messages(s, step_id="thanks-email")[0].body


def test_bad_mappings_name_the_path_and_save_nothing(factory, world, clock):
    bad = {"calendars": [world.calendar_id, "nope"], "colour": "red", "sender": {"from_email": "not-an-email"},
           "host_users": "alice"}
    with factory() as s, s.begin():
        with pytest.raises(ValidationError) as info:
            recipes.import_recipe(s, world.location_id, "appointment-confirmation-reminders", bad, clock.now())
        assert set(info.value.fields) == {"mapping.calendars[1]", "mapping.colour", "mapping.sender.from_email",
                                          "mapping.host_users"}
        with pytest.raises(ValidationError) as info:
            recipes.import_recipe(s, world.location_id, "cancellation-rebook", ["x"], clock.now())
        assert "mapping" in info.value.fields
        assert s.scalar(select(func.count()).select_from(Workflow)) == 0
        # The location object is still accepted (the API and CLI pass it).
        wf = recipes.import_recipe(s, s.get(Location, world.location_id), "cancellation-rebook", now=clock.now())
        assert "{{location.website}}" in wf.draft["steps"][1]["body"]
