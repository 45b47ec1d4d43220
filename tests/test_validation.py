"""Publish refuses every broken thing at once, each with its JSON path (issue #8)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from automations.documents import workflows
from automations.documents.validation import Problem, validate_document
from automations.errors import ValidationError
from automations.store.models import Location, WorkflowVersion
from tests.factories import doc

SMS = {"id": "sms", "type": "send_sms", "body": "Hi {{contact.first_name}}"}


def problems(factory, world, document) -> dict[str, list[str]]:
    with factory() as s:
        found = validate_document(s, world.location_id, document)
    assert all(isinstance(p, Problem) for p in found)
    out: dict[str, list[str]] = {}
    for p in found:
        out.setdefault(p.path, []).append(p.message)
    return out


def test_a_good_document_has_no_problems(factory, world):
    assert problems(factory, world, doc(SMS)) == {}


def test_every_problem_is_reported_at_once(factory, world):
    document = doc(
        {"id": "a", "type": "send_sms", "body": "Hi {{ contact.first_name "},
        {"id": "b", "type": "send_email", "subject": "S", "body": "{% for x in contact.tags %}{{x}}{% endfor %}"},
        {"id": "c", "type": "send_sms", "body": "{{contact.shoe_size}}"},
        {"id": "d", "type": "if_else", "branches": [
            {"condition": {"rules": [{"field": "contact.shoe_size", "op": "equals", "value": "9"}]}, "target": "a"}]},
        {"id": "e", "type": "goto", "target": "a"},
    )
    found = problems(factory, world, document)
    assert "not closed" in found["steps[0].body"][0]
    assert "template tags" in " ".join(found["steps[1].body"])
    assert "contact.shoe_size" in found["steps[2].body"][0]
    assert "unknown field 'contact.shoe_size'" in found["steps[3].branches[0].condition.rules[0].field"][0]
    loop = found["steps[0]"][0]
    assert "a, b, c, d, e" in loop and "without waiting" in loop


def test_in_needs_a_list_and_steps_targets_must_exist(factory, world):
    document = doc(
        {"id": "d", "type": "if_else", "branches": [
            {"condition": {"rules": [{"field": "contact.email", "op": "in", "value": "a@x.com"}]}, "target": "nowhere"}]},
        SMS,
    )
    found = problems(factory, world, document)
    assert "list" in found["steps[0].branches[0].condition.rules[0].value"][0]


def test_no_trigger(factory, world):
    document = doc(SMS)
    document["triggers"] = []
    assert problems(factory, world, document) == {"triggers": ["a published workflow needs at least one trigger"]}
    broken = {**document, "steps": [{"id": "x", "type": "teleport"}]}
    assert set(problems(factory, world, broken)) == {"triggers", "steps[0].type"}


def test_unknown_calendar_in_trigger_filters(factory, world):
    document = doc(SMS)
    document["triggers"][0]["filters"]["calendars"] = [world.calendar_id, "nope"]
    assert list(problems(factory, world, document)) == ["triggers[0].filters.calendars[1]"]


@pytest.mark.parametrize(
    ("steps", "loop"),
    [
        ([SMS, {"id": "back", "type": "goto", "target": "sms"}], "sms, back"),
        ([{"id": "w", "type": "wait_time_delay", "amount": 0, "unit": "minutes"}, SMS,
          {"id": "back", "type": "goto", "target": "w"}], "w, sms, back"),
        # A wait for the appointment time finishes at once the second time round: not a wait in a loop.
        ([{"id": "w", "type": "wait_appointment_time", "direction": "before", "hours": 1}, SMS,
          {"id": "back", "type": "goto", "target": "w"}], "w, sms, back"),
        ([{"id": "c", "type": "wait_condition", "condition": {"rules": [{"field": "contact.tags", "op": "contains",
          "value": "vip"}]}, "on_true": "sms"}, {**SMS, "next": "c"}], "c, sms"),
        ([{**SMS, "next": "sms"}], "sms"),
    ],
)
def test_loops_without_a_wait_are_refused_naming_the_steps(factory, world, steps, loop):
    found = problems(factory, world, doc(*steps))
    messages = [m for ms in found.values() for m in ms if "loop" in m]
    assert len(messages) == 1 and f"steps {loop} form a loop" in messages[0], found


def test_loops_through_a_time_delay_and_forward_jumps_are_fine(factory, world):
    steps = [{"id": "w", "type": "wait_time_delay", "amount": 1, "unit": "days"}, SMS,
             {"id": "d", "type": "if_else", "branches": [
                 {"condition": {"rules": [{"field": "contact.tags", "op": "contains", "value": "vip"}]},
                  "target": "w"}], "otherwise": "end"},
             {"id": "never", "type": "goto", "target": "sms"}]
    found = problems(factory, world, doc(*steps))
    assert not [m for ms in found.values() for m in ms if "loop" in m], found


def test_publish_refuses_with_every_path_and_saves_nothing(factory, world, clock):
    document = doc({"id": "a", "type": "send_sms", "body": "Hi {{ contact.first_name "},
                   {"id": "b", "type": "goto", "target": "a"})
    document["triggers"] = []
    with factory() as s, s.begin():
        loc = s.get(Location, world.location_id)
        # Drafts are saved structurally valid only; build one by hand to publish.
        wf = workflows.create(s, loc, doc(SMS), now=clock.now())
        wf.draft = document
        with pytest.raises(ValidationError) as info:
            workflows.publish(s, wf, now=clock.now())
        assert {"steps[0].body", "triggers"} <= set(info.value.fields)
        assert s.scalar(select(func.count()).select_from(WorkflowVersion)) == 0


def test_publishing_an_unchanged_draft_keeps_the_version(factory, world, clock):
    with factory() as s, s.begin():
        loc = s.get(Location, world.location_id)
        wf = workflows.create(s, loc, doc(SMS), now=clock.now())
        first = workflows.publish(s, wf, now=clock.now())
        again = workflows.publish(s, wf, now=clock.now())
        assert again.id == first.id and again.number == 1
        workflows.unpublish(s, wf, now=clock.now())
        assert workflows.publish(s, wf, now=clock.now()).number == 1
        workflows.update_draft(s, wf, doc({**SMS, "body": "changed"}), now=clock.now())
        assert workflows.publish(s, wf, now=clock.now()).number == 2
        assert s.scalar(select(func.count()).select_from(WorkflowVersion)) == 2


def test_templates_inside_webhook_json_bodies_and_slack_blocks_are_checked(factory, world):
    document = doc(
        {"id": "hook", "type": "webhook", "url": "https://example.com/h",
         "body": {"customer": {"name": "{{ contact.first_name ", "tags": ["{{contact.shoe_size}}"]}}},
        {"id": "slack", "type": "slack", "webhook_url": "https://hooks.slack.com/services/x", "text": "hi",
         "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "{% if x %}"}}]},
    )
    found = problems(factory, world, document)
    assert "not closed" in found["steps[0].body.customer.name"][0]
    assert "template tags" in found["steps[1].blocks[0].text.text"][0]
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["a"] = {}
        node = node["a"]
    node["a"] = "{{contact.first_name}}"
    assert problems(factory, world, doc({"id": "hook", "type": "webhook", "url": "https://e.com", "body": deep})) == {}
