"""The send-time simulator runs the real engine in a rolled-back savepoint (issue #9)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from automations.documents import recipes, workflows
from automations.engine.simulate import simulate
from automations.errors import ValidationError
from automations.store.models import Appointment, Contact, Enrollment, Location, Message, Workflow
from tests.factories import book, doc, messages, publish

RECIPE = "appointment-confirmation-reminders"


def recipe_doc() -> dict:
    return recipes.find(RECIPE).workflow


def run_sim(factory, world, document, *, start, booked_at, tz="America/Los_Angeles", **kw):
    with factory() as s:
        timeline = simulate(s, location_id=world.location_id, document_or_workflow=document,
                            calendar_id=world.calendar_id, start_time=start, contact_timezone=tz, booked_at=booked_at,
                            **kw)
    json.dumps(timeline.to_dict())  # JSON-able as is
    return timeline


def by_step(timeline):
    return {e.step_id: e for e in timeline.entries if e.outcome not in ("waiting", "resumed")}


def test_recipe_timeline_for_a_booking_three_days_ahead(factory, world, clock):
    start = datetime(2026, 11, 5, 15, 0, tzinfo=UTC)  # 10:00 New York, 07:00 Los Angeles
    timeline = run_sim(factory, world, recipe_doc(), start=start, booked_at=clock.now())
    assert timeline.trigger_matched and timeline.final_state == "completed"
    steps = by_step(timeline)
    assert steps["confirm-email"].outcome == "queued" and steps["confirm-email"].at == clock.now().isoformat()
    assert steps["confirm-email"].channel == "email"
    assert steps["reminder-1-day-sms"].at == (start - timedelta(days=1)).isoformat()
    assert steps["reminder-1-hour-sms"].at == "2026-11-05T14:00:00+00:00"
    assert steps["reminder-1-hour-sms"].at_local == "2026-11-05T06:00:00-08:00"
    assert steps["reminder-1-hour-host"].outcome == "queued"


def test_late_booking_skips_with_reasons(factory, world, clock):
    timeline = run_sim(factory, world, recipe_doc(), start=clock.now() + timedelta(minutes=40), booked_at=clock.now())
    steps = by_step(timeline)
    assert steps["confirm-sms"].outcome == "queued"
    for step_id in ("reminder-1-day-email", "reminder-1-day-sms", "reminder-1-hour-sms", "reminder-1-hour-host"):
        assert (steps[step_id].outcome, steps[step_id].skipped) == ("skipped", "past_time"), step_id


def test_opt_out_and_quiet_hours(factory, world, clock):
    document = doc({"id": "sms", "type": "send_sms", "body": "Hi"}, {"id": "email", "type": "send_email",
                   "subject": "S", "body": "B"}, time_window={"start": "09:00", "end": "17:00"})
    night = datetime(2026, 11, 3, 3, 0, tzinfo=UTC)  # 22:00 New York
    timeline = run_sim(factory, world, document, start=night + timedelta(days=2), booked_at=night,
                       contact_opted_out={"sms": True})
    steps = by_step(timeline)
    assert (steps["sms"].outcome, steps["sms"].skipped) == ("skipped", "opt_out")
    assert steps["email"].held_by_quiet_hours
    assert steps["email"].send_at == "2026-11-03T14:00:00+00:00"  # 09:00 New York (the location's zone)


def test_send_cap_and_no_trigger_match(factory, world, clock):
    document = doc({"id": "w", "type": "wait_time_delay", "amount": 1, "unit": "minutes"},
                   {"id": "sms", "type": "send_sms", "body": "Hi"}, {"id": "back", "type": "goto", "target": "w"},
                   statuses=["cancelled"])
    timeline = run_sim(factory, world, document, start=clock.now() + timedelta(days=2), booked_at=clock.now())
    assert not timeline.trigger_matched and "would not enroll" in timeline.notes[0]
    assert timeline.entries[-1].skipped == "send_cap" and timeline.final_state == "exited"
    assert sum(e.outcome == "queued" for e in timeline.entries) == 20


def test_nothing_is_left_behind_and_a_workflow_can_be_given(factory, world, clock):
    with factory() as s, s.begin():
        wf = publish(s, world, recipe_doc(), clock.now())
    counts = lambda s: [s.scalar(select(func.count()).select_from(m)) for m in  # noqa: E731
                        (Contact, Appointment, Enrollment, Message, Workflow)]
    with factory() as s:
        before = counts(s)
        timeline = simulate(s, location_id=world.location_id, document_or_workflow=wf.id, calendar_id=world.calendar_id,
                            start_time=clock.now() + timedelta(days=3), contact_timezone="Europe/London",
                            booked_at=clock.now())
        assert timeline.final_state == "completed"
        assert counts(s) == before
        s.commit()
    with factory() as s:
        assert counts(s) == before


def test_simulated_times_match_a_real_run(factory, runtime, clock, world):
    start = clock.now() + timedelta(days=3, hours=2)
    timeline = run_sim(factory, world, recipe_doc(), start=start, booked_at=clock.now(), tz="America/New_York")
    with factory() as s, s.begin():
        loc = s.get(Location, world.location_id)
        wf = workflows.create(s, loc, recipe_doc(), now=clock.now())
        workflows.publish(s, wf, now=clock.now())
        book(s, world, clock.now(), start=start, status="confirmed")
    runtime.tick()
    for at in (start - timedelta(days=1), start - timedelta(hours=1)):
        clock.set(at)
        runtime.tick()
    with factory() as s:
        real = sorted((m.step_id, m.created_at.isoformat(), m.due_at.isoformat()) for m in messages(s))
    simulated = sorted((e.step_id, e.at, e.send_at) for e in timeline.entries if e.outcome == "queued")
    assert simulated == real and len(real) == 7


def test_bad_input_names_the_field(factory, world, clock):
    with pytest.raises(ValidationError) as info:
        run_sim(factory, world, recipe_doc(), start=clock.now(), booked_at=clock.now(), tz="Mars/Base")
    assert "contact_timezone" in info.value.fields
    with pytest.raises(ValidationError) as info:
        run_sim(factory, world, recipe_doc(), start=clock.now(), booked_at=clock.now(), contact_opted_out={"fax": True})
    assert "contact_opted_out" in info.value.fields
