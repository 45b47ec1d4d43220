"""Bad input gets a clear 4xx naming the problem — never a 500 — and leaves nothing half-saved.

Every case counts the rows of every table before and after.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from automations.store.db import Base
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)


def _all_counts(factory) -> dict[str, int]:
    """Rows per table, except the rate-limit counters (every authenticated call counts there)."""
    from sqlalchemy import func, select

    with factory() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) for t in Base.metadata.sorted_tables
                if t.name != "rate_limit_counters"}


@pytest.fixture
def booking(world, clock) -> dict:
    return {"calendar_id": world.calendar_id, "contact_id": world.dana_id,
            "start_time": (clock.now() + timedelta(days=2)).isoformat()}


def _error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] and error["message"]
    return error


def test_non_json_body_is_400(api, world, factory):
    before = _all_counts(factory)
    error = _error(api.post("/contacts", data="first_name=Dana", content_type="application/json"), 400)
    assert "not valid JSON" in error["message"]
    _error(api.post("/contacts", data=b"\xff\xfe{}", content_type="application/json"), 400)
    _error(api.post("/contacts", data='{"first_name": NaN}', content_type="application/json"), 400)
    assert _all_counts(factory) == before


def test_wrong_content_type_is_415(api, world, factory):
    before = _all_counts(factory)
    error = _error(api.post("/contacts", data='{"first_name": "A"}', content_type="text/plain"), 415)
    assert "application/json" in error["message"]
    _error(api.post("/contacts", data='{"first_name": "A"}'), 415)  # no content type at all
    assert _all_counts(factory) == before


@pytest.mark.parametrize("body", ["[]", '[{"first_name": "A"}]', '"text"', "42", "null", "true"])
def test_non_object_body_is_400(api, world, factory, body):
    before = _all_counts(factory)
    error = _error(api.post("/contacts", data=body, content_type="application/json"), 400)
    assert "JSON object" in error["message"] and "$" in error["fields"]
    _error(api.post("/workflows", data=body, content_type="application/json"), 400)
    assert _all_counts(factory) == before


def test_missing_body_is_400(api, world):
    error = _error(api.post("/contacts", data="", content_type="application/json"), 400)
    assert error["fields"] == {"$": ["required"]}


@pytest.mark.parametrize("value", ["2026-11-05T15:00:00", "2026-11-05 15:00", "2026-11-05"])
def test_naive_or_dateless_time_is_422_naming_the_field(api, booking, factory, value):
    before = _all_counts(factory)
    response = api.post("/appointments", {**booking, "start_time": value})
    error = _error(response, 422)
    assert list(error["fields"]) == ["start_time"]
    if "T" in value:
        assert "UTC offset" in error["fields"]["start_time"][0]
    assert _all_counts(factory) == before


def test_naive_time_in_patch_is_422(api, booking, factory):
    appt = api.post("/appointments", booking).get_json()
    before = _all_counts(factory)
    error = _error(api.patch(f"/appointments/{appt['id']}", {"end_time": "2026-11-05T15:00:00"}), 422)
    assert "end_time" in error["fields"]
    assert _all_counts(factory) == before


def test_unknown_field_is_422_naming_it(api, booking, factory):
    before = _all_counts(factory)
    error = _error(api.post("/appointments", {**booking, "stat": "confirmed"}), 422)
    assert error["fields"] == {"stat": ["Unknown field."]}
    assert "stat" in error["message"]
    error = _error(api.post("/appointments", {**booking, "contact_id": None, "contact": {"first_name": "A",
                                                                                        "mail": "a@b.c"}}), 422)
    assert "contact.mail" in error["fields"]
    assert _all_counts(factory) == before


@pytest.mark.parametrize("field,value", [
    ("calendar_id", 5), ("contact_id", ["x"]), ("start_time", 1767225600), ("end_time", True),
    ("title", {"text": "x"}), ("notes", 3.5), ("is_recurring", "yes"), ("is_recurring", 1),
    ("status", "booked"), ("assigned_user_id", 7), ("title", "x" * 301), ("start_time", "9999-12-31T23:00:00-05:00"),
    ("title", "nul\x00byte"), ("notes", "\ud800 lone surrogate"),
])
def test_wrong_types_are_422_naming_the_field(api, booking, factory, field, value):
    before = _all_counts(factory)
    error = _error(api.post("/appointments", {**booking, field: value}), 422)
    assert field in error["fields"], error
    assert _all_counts(factory) == before


def test_huge_body_is_413(api, world, factory, booking):
    before = _all_counts(factory)
    huge_doc = confirmation_doc()
    huge_doc["description"] = "x" * (1024 * 1024 + 10)
    error = _error(api.post("/workflows", huge_doc), 413)
    assert error["code"] == "payload_too_large"
    _error(api.post("/appointments", {**booking, "notes": "y" * (2 * 1024 * 1024)}), 413)
    assert _all_counts(factory) == before


def test_absurd_nesting_is_400_not_a_crash(api, world, factory):
    before = _all_counts(factory)
    deep = "[" * 5000 + "]" * 5000
    _error(api.post("/workflows", data='{"steps": ' + deep + "}", content_type="application/json"), 400)
    nested = {"x": 1}
    for _ in range(100):
        nested = {"x": nested}
    _error(api.post("/contacts", {"first_name": "A", "custom_fields": nested}), 400)
    assert _all_counts(factory) == before


@pytest.mark.parametrize("query,param", [
    ("limit=0", "limit"), ("limit=abc", "limit"), ("limit=1000", "limit"), ("cursor=garbage!", "cursor"),
    ("cursor=WyJ4Il0", "cursor"), ("stauts=sent", "stauts"), ("status=sent&status=failed", "status"),
    ("status=lost", "status"), ("channel=%00", "channel"),
])
def test_bad_query_parameters_are_422_naming_them(api, world, query, param):
    error = _error(api.get(f"/messages?{query}"), 422)
    assert param in error["fields"]


def test_routing_errors_are_json(api, world):
    error = _error(api.delete("/contacts"), 405)
    assert error["code"] == "method_not_allowed"
    assert api.delete("/contacts").headers["Allow"]
    _error(api.get("/no-such-resource"), 404)
    _error(api.get("/contacts/%00"), 404)
    _error(api.get("/contacts/" + "a" * 500), 404)


def test_unexpected_errors_are_logged_json_500(app, world, caplog):
    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/boom")
    error = _error(response, 500)
    assert error == {"code": "internal_error", "message": "internal server error"}  # no internals leak
    assert "kaboom" in caplog.text


GARBAGE_WORKFLOWS = [
    {"version": 1, "name": "x", "steps": [None]},
    {"version": 1, "name": "x", "steps": [[]]},
    {"version": 1, "name": "x", "steps": "x"},
    {"version": 1, "name": "x", "steps": [], "triggers": [5]},
    {"version": 1, "name": "x", "steps": [], "triggers": [{"type": "appointment_status", "filters": "all"}]},
    {"version": 1, "name": "x", "steps": [], "settings": []},
    {"version": 1, "name": "x", "steps": [], "settings": {"meeting_link": {"wait_seconds": -1}}},
    {"version": 1, "name": "x", "steps": [], "settings": {"timezone_mode": "mars"}},
    {"version": 2, "name": "x", "steps": []},
    {"version": 1, "name": "", "steps": []},
    {"version": 1, "name": "x", "steps": [{"id": 5, "type": "send_email", "subject": "s", "body": "b"}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": ["send_email"]}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "send_email", "subject": "s", "body": "b",
                                           "next": "nowhere"}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "send_sms", "body": "{{ range(10**9) }}"}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "wait_appointment_time", "direction": "before",
                                           "months": 10**30}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "wait_appointment_time", "direction": "before",
                                           "minutes": -5}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "wait_time_delay", "amount": 1.5, "unit": "days"}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "wait_time_delay", "amount": 1, "unit": "days",
                                           "window": {"days": ["funday"], "start": "25:00", "end": "x"}}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "if_else", "branches": [{"condition": {"rules": "x"},
                                                                                     "target": "a"}]}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "if_else", "branches": [
        {"condition": {"match": "all", "rules": [{"field": 5, "op": "regex", "value": [1]}]}, "target": "a"}]}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "internal_notification", "channel": "in_app",
                                           "recipients": "users", "body": "b"}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "goto"}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "update_appointment_status", "status": "gone"}]},
    {"version": 1, "name": "x", "steps": [{"id": "a", "type": "wait_condition"}]},
]


@pytest.mark.parametrize("document", GARBAGE_WORKFLOWS, ids=[str(i) for i in range(len(GARBAGE_WORKFLOWS))])
def test_garbage_workflow_documents_are_422_with_paths(api, world, factory, document):
    before = _all_counts(factory)
    error = _error(api.post("/workflows", document), 422)
    assert error["fields"], error
    wf = api.post("/workflows", confirmation_doc()).get_json()
    replaced = api.put(f"/workflows/{wf['id']}", document)
    assert replaced.status_code == 422
    assert api.get(f"/workflows/{wf['id']}").get_json()["draft"] == wf["draft"]
    after = _all_counts(factory)
    assert after["workflows"] == before["workflows"] + 1  # only the good one


def test_every_write_endpoint_refuses_garbage_without_saving(api, world, factory, clock, runtime):
    wf = api.post("/workflows", confirmation_doc()).get_json()
    appt = api.post("/appointments", {"calendar_id": world.calendar_id, "contact_id": world.dana_id,
                                      "start_time": (clock.now() + timedelta(days=3)).isoformat()}).get_json()
    runtime.tick()
    note = api.get("/notifications").get_json()["items"]
    writes = [
        ("POST", "/contacts"), ("PATCH", f"/contacts/{world.dana_id}"), ("POST", "/appointments"),
        ("PATCH", f"/appointments/{appt['id']}"), ("POST", f"/appointments/{appt['id']}/cancel"),
        ("POST", "/workflows"), ("PUT", f"/workflows/{wf['id']}"), ("POST", f"/workflows/{wf['id']}/publish"),
        ("POST", f"/workflows/{wf['id']}/unpublish"), ("POST", "/workflows/import"),
        ("POST", "/recipes/appointment-confirmation-reminders/import"),
    ] + ([("POST", f"/notifications/{note[0]['id']}/read")] if note else [])
    bodies = [
        ("[1, 2]", "application/json"), ("{not json", "application/json"), ('{"a": 1}', "text/plain"),
        (json.dumps({"zzz_unknown": 1}), "application/json"),
    ]
    before = _all_counts(factory)
    for method, path in writes:
        for data, content_type in bodies:
            response = api.call(method, path, data=data, content_type=content_type)
            assert 400 <= response.status_code < 500, (method, path, data, response.get_json())
            assert response.get_json()["error"]["message"]
    assert _all_counts(factory) == before
