"""API authentication and location scoping: no key or a wrong key is a 401 with
``WWW-Authenticate: Bearer``; another location's ids are 404 and never appear in lists."""

from __future__ import annotations

from datetime import timedelta

import pytest

from automations.store.models import Appointment, Contact, Notification, Workflow
from tests.factories import book, publish
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    count,
    other_api_fixture,
    other_world_fixture,
    spy_runtime_fixture,
    sqlite_only,
)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "pk_test_location_one",
                                    "Bearer pk_wrong_key", "Bearer " + "x" * 600])
def test_missing_or_invalid_key_is_401_with_challenge(app, world, header):
    headers = {"Authorization": header} if header is not None else {}
    response = app.test_client().get("/api/v1/contacts", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_writes_without_key_change_nothing(app, world, factory):
    before = count(factory, Contact)
    response = app.test_client().post("/api/v1/contacts", json={"first_name": "Mallory"})
    assert response.status_code == 401
    assert count(factory, Contact) == before


def test_valid_key_sees_own_location(api, world):
    response = api.get("/contacts")
    assert response.status_code == 200
    assert {c["id"] for c in response.get_json()["items"]} == {world.dana_id, world.eli_id}


def test_openapi_and_healthz_need_no_key(app, world):
    client = app.test_client()
    assert client.get("/api/v1/openapi.json").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {"ok": True}


def test_other_locations_resources_are_404(api, other_api, world, other_world, factory, clock, runtime):
    with factory() as s, s.begin():
        wf = publish(s, other_world, confirmation_doc(), clock.now())
        appt = book(s, other_world, clock.now(), start=clock.now() + timedelta(days=2))
        wf_id, appt_id = wf.id, appt.id
    runtime.tick()
    # The other location's own key sees its data, so the ids are real.
    assert other_api.get(f"/appointments/{appt_id}").status_code == 200
    other_messages = other_api.get("/messages").get_json()["items"]
    other_enrollments = other_api.get("/enrollments").get_json()["items"]
    assert other_messages and other_enrollments
    other_notes = other_api.get("/notifications").get_json()["items"]
    assert other_notes

    paths = [
        f"/contacts/{other_world.dana_id}",
        f"/calendars/{other_world.calendar_id}",
        f"/appointments/{appt_id}",
        f"/workflows/{wf_id}",
        f"/workflows/{wf_id}/export",
        f"/enrollments/{other_enrollments[0]['id']}",
        f"/messages/{other_messages[0]['id']}",
    ]
    for path in paths:
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.get_json()["error"]["code"] == "not_found"
    # Writes are 404 too, and change nothing.
    assert api.patch(f"/contacts/{other_world.dana_id}", {"first_name": "Hacked"}).status_code == 404
    assert api.patch(f"/appointments/{appt_id}", {"status": "cancelled"}).status_code == 404
    assert api.post(f"/appointments/{appt_id}/cancel").status_code == 404
    assert api.put(f"/workflows/{wf_id}", confirmation_doc("Hijacked")).status_code == 404
    assert api.post(f"/workflows/{wf_id}/unpublish").status_code == 404
    assert api.delete(f"/workflows/{wf_id}").status_code == 404
    assert api.post(f"/notifications/{other_notes[0]['id']}/read").status_code == 404
    with factory() as s:
        assert s.get(Contact, other_world.dana_id).first_name == "Dana"
        assert s.get(Appointment, appt_id).status == "confirmed"
        assert s.get(Workflow, wf_id).name == "Confirmations"
        assert s.get(Workflow, wf_id).status == "published"
        assert s.get(Notification, other_notes[0]["id"]).read_at is None


def test_lists_never_show_other_locations_rows(api, other_api, world, other_world, factory, clock, runtime):
    with factory() as s, s.begin():
        publish(s, other_world, confirmation_doc(), clock.now())
        book(s, other_world, clock.now(), start=clock.now() + timedelta(days=2))
    runtime.tick()
    assert other_api.get("/appointments").get_json()["items"]
    for path in ("/appointments", "/workflows", "/enrollments", "/messages", "/notifications"):
        assert api.get(path).get_json()["items"] == [], path
    ours = {c["id"] for c in api.get("/calendars").get_json()["items"]}
    assert ours == {world.calendar_id, world.static_calendar_id}
    # Filtering by another location's id finds nothing rather than leaking it.
    assert api.get(f"/appointments?contact_id={other_world.dana_id}").get_json()["items"] == []


def test_booking_with_other_locations_calendar_or_contact_is_refused(api, world, other_world, factory, clock):
    start = (clock.now() + timedelta(days=2)).isoformat()
    before = count(factory, Appointment)
    r1 = api.post("/appointments", {"calendar_id": other_world.calendar_id, "contact_id": world.dana_id,
                                    "start_time": start})
    r2 = api.post("/appointments", {"calendar_id": world.calendar_id, "contact_id": other_world.dana_id,
                                    "start_time": start})
    assert r1.status_code == 422 and "calendar_id" in r1.get_json()["error"]["fields"]
    assert r2.status_code == 422 and "contact_id" in r2.get_json()["error"]["fields"]
    assert count(factory, Appointment) == before

