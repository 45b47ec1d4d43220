"""``skip_if_after``: a step that is reached after its moment is skipped with a logged reason; the
shipped recipe's host note "in 1 hour" never goes out late (issue #8)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.booking import appointments
from automations.documents import recipes
from automations.store.models import Enrollment, Location
from tests.factories import book, doc, log_lines, messages, publish

NOTE = {"id": "note", "type": "internal_notification", "channel": "in_app", "body": "In 1 hour: {{contact.name}}",
        "skip_if_after": {"direction": "before", "minutes": 45}}
WAIT = {"id": "w", "type": "wait_appointment_time", "direction": "before", "hours": 1}


@pytest.mark.parametrize(("starts_in", "sent"), [(timedelta(days=2), True), (timedelta(minutes=50), True),
                                                 (timedelta(minutes=40), False), (-timedelta(hours=3), False)])
def test_guard_skips_a_note_reached_after_its_moment(factory, runtime, clock, world, starts_in, sent):
    with factory() as s, s.begin():
        publish(s, world, doc(WAIT, NOTE), clock.now())
        appt = _book_then_confirm(s, world, clock.now(), clock.now() + starts_in)
    runtime.tick()
    clock.set(max(clock.now(), appt.start_at - timedelta(hours=1)))
    runtime.tick()
    with factory() as s:
        notes = messages(s, step_id="note")
        assert bool(notes) is sent
        lines = log_lines(s, s.scalars(select(Enrollment)).one().id)
        note_line = next(line for line in lines if line[0] == "note")
        if not sent:
            assert note_line[1] == "skipped" and "skip_if_after" in note_line[2]


def _book_then_confirm(s, world, now, start):
    """A booking ahead is confirmed at once; one that already happened is recorded as past (which sends
    nothing) and then confirmed by staff, which is what enrolls it."""
    if start > now:
        return book(s, world, now, start=start, status="confirmed")
    appt = book(s, world, now, start=start, status="new", record_past=True)
    appointments.change_status(s, appt, "confirmed", modified_by="user", now=now)
    return appt


def test_guard_is_refused_on_waits_and_validated(factory, world):
    from automations.documents.workflow_schema import load_document
    from automations.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        load_document(doc({**WAIT, "skip_if_after": {"direction": "before", "minutes": 5}}))
    assert "steps[0].skip_if_after" in info.value.fields
    with pytest.raises(ValidationError) as info:
        load_document(doc({**NOTE, "skip_if_after": {"direction": "sideways"}}))
    assert "steps[0].skip_if_after.direction" in info.value.fields
    loaded = load_document(doc({**NOTE, "skip_if_after": {"direction": "before", "minutes": 90}}))
    assert loaded["steps"][0]["skip_if_after"] == {"direction": "before", "months": 0, "days": 0, "hours": 1,
                                                   "minutes": 30}


@pytest.mark.parametrize("starts_in", [timedelta(minutes=40), -timedelta(days=1)])
def test_recipe_host_note_never_goes_out_late(factory, runtime, clock, world, starts_in):
    with factory() as s, s.begin():
        recipes.import_recipe(s, s.get(Location, world.location_id), "appointment-confirmation-reminders",
                              now=clock.now(), publish=True)
        _book_then_confirm(s, world, clock.now(), clock.now() + starts_in)
    runtime.tick()
    clock.advance(days=2)
    runtime.tick()
    with factory() as s:
        assert messages(s, step_id="notify-host")  # the booking note itself is fine at booking
        assert not messages(s, step_id="reminder-1-hour-host")


def test_recipe_host_note_goes_out_an_hour_before(factory, runtime, clock, world):
    with factory() as s, s.begin():
        recipes.import_recipe(s, s.get(Location, world.location_id), "appointment-confirmation-reminders",
                              now=clock.now(), publish=True)
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=3), status="confirmed")
    runtime.tick()
    clock.set(appt.start_at - timedelta(hours=1))
    runtime.tick()
    with factory() as s:
        [note] = messages(s, step_id="reminder-1-hour-host")
        assert note.created_at == appt.start_at - timedelta(hours=1)
