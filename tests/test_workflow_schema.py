"""Workflow documents: validation errors name the JSON path and reason; defaults are filled in."""

from __future__ import annotations

import pytest

from automations.documents.validation import publish_problems
from automations.documents.workflow_schema import load_document
from automations.errors import ValidationError
from automations.rendering import merge_fields
from tests.factories import doc


def errors_of(document) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        load_document(document)
    return info.value.fields


def test_valid_document_gets_defaults():
    loaded = load_document(doc({"id": "s", "type": "send_sms", "body": "hi"}))
    assert loaded["settings"]["reschedule"] == "restart"
    assert loaded["settings"]["meeting_link"] == {"policy": "fallback", "wait_seconds": 900}
    assert loaded["triggers"][0]["filters"]["event_type"] == "any"
    assert loaded["steps"][0]["next"] is None


@pytest.mark.parametrize(
    ("step", "path", "needle"),
    [
        ({"id": "a", "type": "send_email", "body": "x"}, "steps[0].subject", "Missing"),
        ({"id": "a", "type": "wait_time_delay", "amount": -1, "unit": "minutes"}, "steps[0].amount", "greater"),
        ({"id": "a", "type": "wait_time_delay", "amount": 1, "unit": "weeks"}, "steps[0].unit", "Must be one of"),
        ({"id": "a", "type": "wait_time_delay", "amount": 1, "unit": "hours", "window": {"start": "25:00", "end": "10:00"}},
         "steps[0].window.start", ""),
        ({"id": "a", "type": "teleport"}, "steps[0].type", "unknown step type"),
        ({"id": "a", "type": "send_sms", "body": "x", "colour": "red"}, "steps[0].colour", "Unknown field"),
        ({"id": "a b", "type": "send_sms", "body": "x"}, "steps[0].id", "letters"),
        ({"id": "a", "type": "goto", "target": "nowhere"}, "steps[0].target", "no step with id"),
        ({"id": "a", "type": "wait_appointment_time", "direction": "before", "months": 10000}, "steps[0].months", ""),
        ({"id": "a", "type": "wait_appointment_time", "direction": "sideways"}, "steps[0].direction", "Must be one of"),
        ({"id": "a", "type": "wait_appointment_time", "direction": "before", "if_past": {"action": "goto"}},
         "steps[0].if_past.target", "required"),
        ({"id": "a", "type": "send_sms", "body": "{{ ''.__class__ }}"}, "steps[0].body", "only merge fields"),
        ({"id": "a", "type": "internal_notification", "channel": "email", "recipients": "custom", "body": "x"},
         "steps[0].emails", "at least one"),
    ],
)
def test_step_errors_name_the_path(step, path, needle):
    fields = errors_of(doc(step))
    assert path in fields, fields
    assert needle in " ".join(fields[path])


def test_top_level_and_trigger_errors():
    fields = errors_of({"version": 2, "name": "", "steps": "x", "triggers": [{"type": "appointment_status",
                                                                             "filters": {"statuses": ["lost"]}}]})
    assert "version" in fields and "name" in fields and "steps" in fields
    fields = errors_of(doc({"id": "a", "type": "send_sms", "body": "x"}, statuses=["lost"]))
    assert "triggers[0].filters.statuses[0]" in fields
    assert "$" in errors_of([1, 2])


def test_duplicate_ids_are_rejected():
    fields = errors_of(doc({"id": "a", "type": "send_sms", "body": "x"}, {"id": "a", "type": "send_sms", "body": "y"}))
    assert fields == {"steps[1].id": ["duplicate step id 'a'"]}


def test_rollover_is_stored_in_the_document():
    loaded = load_document(doc({"id": "w", "type": "wait_appointment_time", "direction": "before", "minutes": 90, "hours": 30}))
    step = loaded["steps"][0]
    assert (step["months"], step["days"], step["hours"], step["minutes"]) == (0, 1, 7, 30)


def test_publish_reports_unknown_merge_paths_and_ids():
    loaded = load_document(doc(
        {"id": "a", "type": "send_sms", "body": "{{contact.first_name}} {{contact.shoe_size}} {{Contact.email}}"},
        {"id": "b", "type": "internal_notification", "channel": "in_app", "recipients": "users", "user_ids": ["ghost"],
         "body": "x"},
    ))
    loaded["triggers"][0]["filters"]["calendars"] = ["nocal"]
    known = merge_fields.KnownPaths.for_location(["favorite_color"], [])
    fields: dict[str, list[str]] = {}
    for p in publish_problems(loaded, known=known, calendar_ids={"cal"}, user_ids={"u1"}):
        fields.setdefault(p.path, []).append(p.message)
    assert "contact.shoe_size" in fields["steps[0].body"][0] and "Contact.email" in fields["steps[0].body"][0]
    assert "steps[1].user_ids[0]" in fields
    assert "triggers[0].filters.calendars[0]" in fields
