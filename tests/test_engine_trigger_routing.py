"""Triggers route their own events: a trigger type in one module, listening to an event kind nobody
else handles, enrolls contacts without any change to the engine (issue #7)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from marshmallow import fields
from sqlalchemy import select

from automations.booking import appointments
from automations.store.models import Appointment, Enrollment
from automations.store.states import EventKind
from tests.factories import book, doc, log_lines, messages, publish
from triggers import TRIGGER_TYPES, listening_to
from triggers.appointment_status import AppointmentStatusTrigger
from triggers.base import FilterSchema, TriggerFacts, TriggerType


class NotesFilters(FilterSchema):
    contains = fields.String(load_default="")


@pytest.fixture
def notes_trigger():
    """A trigger type as its own module would define it: fires when an appointment's notes change."""

    class NotesChanged(TriggerType):
        filters_schema = NotesFilters
        event_kinds = frozenset({EventKind.APPOINTMENT_UPDATED})

        def facts(self, session, event):
            appt = session.get(Appointment, event.appointment_id)
            return TriggerFacts(event_kind=event.kind, appointment_id=appt.id, extra={"notes": appt.notes or ""})

        def matches(self, filters, facts):
            return filters["contains"] in facts.extra["notes"]

    TRIGGER_TYPES.register("test_notes_changed")(NotesChanged)
    yield NotesChanged
    TRIGGER_TYPES._items.pop("test_notes_changed")


def test_routing_uses_event_kinds():
    assert [t.name for t in listening_to(EventKind.APPOINTMENT_STATUS)] == ["appointment_status"]
    assert listening_to(EventKind.MEETING_RESOLVED) == []
    assert AppointmentStatusTrigger.event_kinds == {EventKind.APPOINTMENT_BOOKED, EventKind.APPOINTMENT_STATUS}


def test_a_new_trigger_type_is_one_module(factory, runtime, clock, world, notes_trigger):
    document = doc({"id": "sms", "type": "send_sms", "body": "Noted"})
    document["triggers"] = [{"type": "test_notes_changed", "name": "Notes", "filters": {"contains": "VIP"}}]
    with factory() as s, s.begin():
        publish(s, world, document, clock.now())
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=2))
    runtime.tick()
    with factory() as s:
        assert not messages(s)  # booking is not its event
    with factory() as s, s.begin():
        appointments.update_details(s, s.get(Appointment, appt.id), now=clock.now(), modified_by="api",
                                    notes="VIP guest")
    runtime.tick()
    with factory() as s:
        assert [m.template["body"] for m in messages(s)] == ["Noted"]
        e = s.scalars(select(Enrollment)).one()
        assert log_lines(s, e.id)[0][2] == "trigger Notes: appointment.updated"
