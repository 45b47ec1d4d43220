"""The builder through its forms (no JavaScript): create, trigger with filters, insert / edit / move /
duplicate / delete steps, validation errors shown by field (nothing saved), publish, versions, import /
export, recipes with mapping."""

from __future__ import annotations

import io
import json

from sqlalchemy import func, select

from automations.store.models import Workflow, WorkflowVersion
from tests.test_pages_fixtures import (  # noqa: F401
    app_fixture,
    browser_fixture,
    signed_in_fixture,
    sqlite_only,
    two_worlds_fixture,
)


def _draft(factory, wid):
    with factory() as s:
        return s.get(Workflow, wid).draft


def _create(b, name="Reminders") -> str:
    r = b.post("/workflows", {"name": name})
    assert r.status_code == 302
    return r.headers["Location"].rsplit("/", 1)[-1]


def test_build_a_workflow_through_forms(signed_in, factory, two_worlds):
    one, _ = two_worlds
    wid = _create(signed_in)
    # Trigger with filters.
    r = signed_in.post(f"/workflows/{wid}/triggers/new", {
        "type": "appointment_status", "name": "Appointment", "filters.event_type": "normal",
        "filters.statuses": "confirmed", "filters.calendars": one.calendar_id})
    assert r.status_code == 302
    trig = _draft(factory, wid)["triggers"][0]
    assert trig["filters"]["statuses"] == ["confirmed"] and trig["filters"]["calendars"] == [one.calendar_id]
    assert trig["filters"]["event_type"] == "normal"
    # The action picker, then the appointment-time wait with the seed's wording.
    page = signed_in.get(f"/workflows/{wid}/steps/new?at=0").get_data(as_text=True)
    assert "External communications" in page and "Internal Notification" in page
    page = signed_in.get(f"/workflows/{wid}/steps/new?at=0&type=wait_appointment_time").get_data(as_text=True)
    assert "Months (max: 9999)" in page[page.index("field-months") - 200:] or "Months" in page
    assert "Skip all outbound communication actions" in page and "Exact time" in page
    r = signed_in.post(f"/workflows/{wid}/steps/new?at=0&type=wait_appointment_time", {
        "name": "1 day before", "direction": "before", "months": "0", "days": "0", "hours": "25", "minutes": "0",
        "if_past.action": "skip_outbound", "if_past.target": ""})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    step = _draft(factory, wid)["steps"][0]
    assert (step["days"], step["hours"], step["if_past"]["action"]) == (1, 1, "skip_outbound")  # rolled over
    # An SMS with a bad merge field: 422, the error in the summary and beside the field, nothing saved.
    r = signed_in.post(f"/workflows/{wid}/steps/new?at=1&type=send_sms", {"name": "Text", "body": "Link: {{ appointment.meeting_location | shout }}"})
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "There is a problem" in html and 'href="#field-body"' in html and 'class="error-message"' in html
    assert len(_draft(factory, wid)["steps"]) == 1
    r = signed_in.post(f"/workflows/{wid}/steps/new?at=1&type=send_sms", {"name": "Text", "body": "Link: {{ appointment.meeting_location }}"})
    assert r.status_code == 302
    r = signed_in.post(f"/workflows/{wid}/steps/new?at=2&type=internal_notification", {
        "name": "Tell the host", "channel": "in_app", "recipients": "assigned_user", "body": "{{ contact.name }} booked"})
    assert r.status_code == 302, r.get_data(as_text=True)[:3000]
    steps = _draft(factory, wid)["steps"]
    assert [s["type"] for s in steps] == ["wait_appointment_time", "send_sms", "internal_notification"]
    # Move, duplicate, delete.
    sms_id = steps[1]["id"]
    assert signed_in.post(f"/workflows/{wid}/steps/{sms_id}/up").status_code == 302
    assert [s["type"] for s in _draft(factory, wid)["steps"]][:2] == ["send_sms", "wait_appointment_time"]
    assert signed_in.post(f"/workflows/{wid}/steps/{sms_id}/duplicate").status_code == 302
    assert len(_draft(factory, wid)["steps"]) == 4
    dup = _draft(factory, wid)["steps"][1]["id"]
    assert signed_in.post(f"/workflows/{wid}/steps/{dup}/delete").status_code == 302
    assert len(_draft(factory, wid)["steps"]) == 3
    # The builder shows it all; publish makes version 1, published by the signed-in user.
    page = signed_in.get(f"/workflows/{wid}").get_data(as_text=True)
    assert "Tell the host" in page and "skip all outbound communication until the next wait" in page
    assert signed_in.post(f"/workflows/{wid}/publish").status_code == 302
    with factory() as s:
        v = s.scalar(select(WorkflowVersion).where(WorkflowVersion.workflow_id == wid))
        assert v.number == 1 and v.published_by == one.alice_id
    assert "alice@example.com" in signed_in.get(f"/workflows/{wid}/versions").get_data(as_text=True)
    assert "read only" in signed_in.get(f"/workflows/{wid}/versions/1").get_data(as_text=True)


def test_publish_problems_link_to_the_field(signed_in, factory):
    wid = _create(signed_in)
    signed_in.post(f"/workflows/{wid}/steps/new?at=0&type=send_sms", {"name": "Text", "body": "Hi {{ contact.shoe_size }}"})
    r = signed_in.post(f"/workflows/{wid}/publish")
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert "steps[0].body" in html and "unknown merge fields: contact.shoe_size" in html
    assert f"/workflows/{wid}/steps/send-sms-1#field-body" in html
    with factory() as s:
        assert s.get(Workflow, wid).status == "draft"


def test_live_validation_endpoint(signed_in):
    wid = _create(signed_in)
    r = signed_in.post(f"/workflows/{wid}/steps/new/validate?at=0", {"_type": "wait_time_delay", "amount": "abc", "unit": "minutes"})
    data = r.get_json()
    assert r.status_code == 200 and data["fields"]["amount"] == ["Not a valid integer."]
    assert data["problems"][0]["path"] == "steps[0].amount" and data["problems"][0]["href"] == "#field-amount"


def test_settings_and_tags(signed_in, factory):
    wid = _create(signed_in)
    r = signed_in.post(f"/workflows/{wid}/settings", {"name": "Renamed", "settings.timezone_mode": "contact",
                                                      "settings.reschedule": "recalculate", "settings.stop_on_response": "on",
                                                      "settings.from_email": "not-an-email", "tags": "zoom, reminders"})
    assert r.status_code == 422 and "settings.from_email" in r.get_data(as_text=True)
    r = signed_in.post(f"/workflows/{wid}/settings", {"name": "Renamed", "settings.timezone_mode": "contact",
                                                      "settings.reschedule": "recalculate", "settings.stop_on_response": "on",
                                                      "settings.time_window.days": "mon\ntue", "settings.time_window.start": "09:00",
                                                      "settings.time_window.end": "17:00", "tags": "zoom, reminders"})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    doc = _draft(factory, wid)
    assert doc["name"] == "Renamed" and doc["settings"]["timezone_mode"] == "contact"
    assert doc["settings"]["stop_on_response"] is True and doc["settings"]["time_window"]["days"] == ["mon", "tue"]
    listing = signed_in.get("/workflows?tag=zoom").get_data(as_text=True)
    assert "Renamed" in listing


def test_import_refuses_a_bad_file_with_its_path(signed_in, factory):
    bad = {"version": 1, "name": "X", "steps": [{"id": "a", "type": "send_sms"}]}
    r = signed_in.post("/workflows/import", {"file": (io.BytesIO(json.dumps(bad).encode()), "wf.json")},
                       content_type="multipart/form-data")
    assert r.status_code == 422 and "steps[0].body" in r.get_data(as_text=True)
    with factory() as s:
        assert s.scalar(select(Workflow).where(Workflow.name == "X")) is None
    r = signed_in.post("/workflows/import", {"file": (io.BytesIO(b"{not json"), "wf.json")}, content_type="multipart/form-data")
    assert r.status_code == 422 and "not a JSON file" in r.get_data(as_text=True)
    good = {"version": 1, "name": "Imported", "steps": [{"id": "a", "type": "send_sms", "body": "hi"}]}
    r = signed_in.post("/workflows/import", {"file": (io.BytesIO(json.dumps(good).encode()), "wf.json")},
                       content_type="multipart/form-data")
    assert r.status_code == 302
    wid = r.headers["Location"].rsplit("/", 1)[-1]
    exported = signed_in.get(f"/workflows/{wid}/export")
    assert exported.get_json()["steps"][0]["body"] == "hi"


def test_recipe_import_with_mapping(signed_in, factory, two_worlds):
    one, _ = two_worlds
    r = signed_in.post("/recipes/appointment-confirmation-reminders/import", {
        "name": "Consultation reminders", "mapping.calendars": one.calendar_id, "mapping.sender.from_name": "Clinic",
        "mapping.sender.from_email": "hi@clinic.example", "mapping.host_users": one.bob_id})
    assert r.status_code == 302
    wid = r.headers["Location"].rsplit("/", 1)[-1]
    doc = _draft(factory, wid)
    assert doc["name"] == "Consultation reminders" and doc["settings"]["from_email"] == "hi@clinic.example"
    assert doc["triggers"][0]["filters"]["calendars"] == [one.calendar_id]
    assert any(s.get("user_ids") == [one.bob_id] for s in doc["steps"])
    with factory() as s:
        before = s.scalar(select(func.count()).select_from(Workflow))
    # A bad mapping is refused with its JSON path, beside its field; nothing is saved.
    r = signed_in.post("/recipes/appointment-confirmation-reminders/import", {
        "name": "", "mapping.sender.from_email": "nope", "mapping.calendars": "0" * 32})
    page = r.get_data(as_text=True)
    assert r.status_code == 422 and "mapping.sender.from_email" in page and "mapping.calendars[0]" in page
    assert 'id="field-mapping-sender-from_email"' in page
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Workflow)) == before
    # Categories come from the recipes themselves.
    gallery = signed_in.get("/recipes?category=reviews").get_data(as_text=True)
    assert "thank" in gallery.lower() and "Appointment confirmation" not in gallery


def test_an_untouched_skip_guard_adds_nothing(signed_in, factory):
    """The browser always posts the guard's before/after select; with no amount filled in, the step gets no
    guard (it used to become "skip if 0 minutes before", silently dropping late sends)."""
    wid = _create(signed_in)
    base = {"name": "Text", "body": "Hi {{ contact.first_name }}", "skip_if_after.direction": "before",
            "skip_if_after.months": "", "skip_if_after.days": "", "skip_if_after.hours": "", "skip_if_after.minutes": ""}
    r = signed_in.post(f"/workflows/{wid}/steps/new?at=0&type=send_sms", base)
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    assert _draft(factory, wid)["steps"][0].get("skip_if_after") is None
    r = signed_in.post(f"/workflows/{wid}/steps/new?at=1&type=send_sms", {**base, "skip_if_after.minutes": "30"})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    guard = _draft(factory, wid)["steps"][1]["skip_if_after"]
    assert (guard["direction"], guard["minutes"]) == ("before", 30)
