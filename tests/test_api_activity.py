"""Enrollments (with their logs), the outbox, and in-app notifications through the API."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import book, publish
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)


def _booked(factory, world, clock, runtime, *, contact_id=None):
    with factory() as s, s.begin():
        wf = publish(s, world, confirmation_doc(), clock.now())
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=3), contact_id=contact_id)
        ids = wf.id, appt.id, appt.assigned_user_id
    runtime.tick()
    return ids


def test_enrollment_with_log_in_order(api, world, clock, factory, runtime):
    wf_id, appt_id, _ = _booked(factory, world, clock, runtime)
    listed = api.get(f"/enrollments?workflow_id={wf_id}&state=waiting").get_json()["items"]
    assert len(listed) == 1
    enrollment = listed[0]
    assert (enrollment["appointment_id"], enrollment["contact_id"], enrollment["step_id"]) == (
        appt_id, world.dana_id, "wait")
    assert enrollment["wait_kind"] == "appointment_time"
    detail = api.get(f"/enrollments/{enrollment['id']}").get_json()
    assert [(line["step_id"], line["step_type"], line["outcome"]) for line in detail["log"]] == [
        (None, None, "enrolled"),
        ("confirm", "send_email", "queued"),
        ("tell-host", "internal_notification", "queued"),
        ("wait", "wait_appointment_time", "waiting"),
    ]
    assert all(line["reason"] and line["at"] == clock.now().isoformat() for line in detail["log"])
    assert api.get("/enrollments?state=completed").get_json()["items"] == []
    assert api.get(f"/enrollments?contact_id={world.eli_id}").get_json()["items"] == []
    bad = api.get("/enrollments?state=sleeping")
    assert bad.status_code == 422 and "state" in error_fields(bad)
    assert api.get("/enrollments/nope").status_code == 404


def test_messages_newest_first_with_filters(api, world, clock, factory, runtime):
    _booked(factory, world, clock, runtime)
    clock.set(clock.now() + timedelta(days=2))  # the day-before reminder comes due
    runtime.tick()
    messages = api.get("/messages").get_json()["items"]
    assert [m["channel"] for m in messages][0] == "sms"  # newest first
    assert {m["channel"] for m in messages} == {"email", "in_app", "sms"}
    sms = api.get("/messages?channel=sms&status=sent").get_json()["items"]
    assert len(sms) == 1 and sms[0]["to"] == "+12125550123" and "sandbox.punctual.invalid" in sms[0]["body"]
    assert api.get("/messages?status=failed").get_json()["items"] == []
    assert len(api.get(f"/messages?contact_id={world.dana_id}").get_json()["items"]) == 2  # not the host's
    assert api.get("/messages?channel=fax").status_code == 422


def test_notifications_list_and_read(api, world, clock, factory, runtime):
    _, _, host = _booked(factory, world, clock, runtime)
    notes = api.get("/notifications?unread=true").get_json()["items"]
    assert len(notes) == 1
    note = notes[0]
    assert note["user_id"] == host and note["title"] == "New booking" and note["body"] == "Dana Contact booked"
    assert note["read"] is False
    other = world.bob_id if host == world.alice_id else world.alice_id
    assert api.get(f"/notifications?user_id={other}").get_json()["items"] == []

    read = api.post(f"/notifications/{note['id']}/read")
    assert read.status_code == 200 and read.get_json()["read"] is True
    assert read.get_json()["read_at"] == clock.now().isoformat()
    clock.advance(minutes=5)
    again = api.post(f"/notifications/{note['id']}/read").get_json()
    assert again["read_at"] == read.get_json()["read_at"]  # the first read time is kept
    assert api.get("/notifications?unread=true").get_json()["items"] == []
    assert [n["id"] for n in api.get("/notifications?unread=false").get_json()["items"]] == [note["id"]]
    assert api.post("/notifications/nope/read").status_code == 404
