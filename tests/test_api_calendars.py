"""Calendars through the API: create each kind, edit, members and their hours, free slots,
recurring series, delete; bad input is a 4xx naming the field and saves nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from automations.store.models import Appointment, Calendar, CalendarMember
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    count,
    error_fields,
    spy_runtime_fixture,
)

HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
TUESDAY_10_NY = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)


def _create(api, **body):
    response = api.post("/calendars", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_each_kind_and_read_it_back(api, world):
    rr = _create(api, name="Intro call", kind="round_robin", slot_minutes=45, slot_interval_minutes=15,
                 buffer_before_minutes=5, buffer_after_minutes=10, min_notice_minutes=60, booking_window_days=30,
                 appointments_per_slot=1, auto_confirm=False, title_template="{{contact.name}} – Intro",
                 description="A first chat", availability=HOURS,
                 members=[{"user_id": world.alice_id, "meeting_location": "https://meet.example.com/a", "priority": 2},
                          {"user_id": world.bob_id}])
    assert rr["slug"] == "intro-call" and rr["kind"] == "round_robin" and rr["timezone"] == "America/New_York"
    assert (rr["slot_minutes"], rr["slot_interval_minutes"], rr["buffer_before_minutes"], rr["buffer_after_minutes"],
            rr["min_notice_minutes"], rr["booking_window_days"], rr["auto_confirm"]) == (45, 15, 5, 10, 60, 30, False)
    assert [(m["user_id"], m["priority"], m["meeting_location"]) for m in rr["members"]] == [
        (world.alice_id, 2, "https://meet.example.com/a"), (world.bob_id, 0, None)]
    assert rr["availability"] == HOURS
    assert api.get(f"/calendars/{rr['id']}").get_json() == rr
    assert _create(api, name="Intro call", kind="personal", members=[{"user_id": world.bob_id}])["slug"] == "intro-call-2"
    assert _create(api, name="Team", kind="collective",
                   members=[{"user_id": world.alice_id}, {"user_id": world.bob_id}])["kind"] == "collective"
    assert _create(api, name="Yoga", kind="class", appointments_per_slot=12,
                   members=[{"user_id": world.bob_id}])["appointments_per_slot"] == 12
    assert _create(api, name="Drop in", kind="unassigned", meeting_location="Room 4")["meeting_location"] == "Room 4"


def test_bad_calendars_are_refused_with_the_field(api, world, factory):
    before = count(factory, Calendar)
    cases = [
        ({"kind": "round_robin"}, "name"),
        ({"name": "X", "kind": "weekly"}, "kind"),
        ({"name": "X", "kind": "personal", "members": []}, "members"),
        ({"name": "X", "kind": "unassigned", "members": [{"user_id": world.bob_id}]}, "members"),
        ({"name": "X", "kind": "personal", "members": [{"user_id": "nobody"}]}, "members[0].user_id"),
        ({"name": "X", "kind": "round_robin", "members": [{"user_id": world.bob_id}, {"user_id": world.bob_id}]},
         "members[1].user_id"),
        ({"name": "X", "kind": "unassigned", "availability": {"mon": [["17:00", "09:00"]]}}, "availability.mon[0][1]"),
        ({"name": "X", "kind": "unassigned", "date_overrides": {"24-12-2026": []}}, "date_overrides.24-12-2026"),
        ({"name": "X", "kind": "unassigned", "timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "X", "kind": "unassigned", "slot_minutes": 0}, "slot_minutes"),
        ({"name": "X", "kind": "unassigned", "title_template": "{{contact.nmae}}"}, "title_template"),
        ({"name": "X", "kind": "unassigned", "colour": "red"}, "colour"),
    ]
    for body, field in cases:
        response = api.post("/calendars", body)
        assert response.status_code == 422, (body, response.get_json())
        assert field in error_fields(response), (body, error_fields(response))
    # Zoom for a member who never connected Zoom is refused (as on the meeting-location endpoint).
    response = api.post("/calendars", {"name": "Z", "kind": "personal",
                                       "members": [{"user_id": world.bob_id, "meeting_location": "zoom"}]})
    assert response.status_code in (403, 409, 422), response.get_json()
    assert count(factory, Calendar) == before


def test_patch_members_availability_and_delete(api, world, factory):
    cal = _create(api, name="Chat", kind="round_robin", members=[{"user_id": world.alice_id}])
    patched = api.patch(f"/calendars/{cal['id']}", {"slot_minutes": 20, "slug": "quick-chat",
                                                    "date_overrides": {"2026-12-24": []}}).get_json()
    assert (patched["slot_minutes"], patched["slug"], patched["date_overrides"]) == (20, "quick-chat", {"2026-12-24": []})
    assert error_fields(api.patch(f"/calendars/{cal['id']}", {"slug": "consultation"})) == {
        "slug": ["already used by another calendar in this location"]}
    members = api.put(f"/calendars/{cal['id']}/members", {"members": [
        {"user_id": world.bob_id, "priority": 1}, {"user_id": world.alice_id}]}).get_json()["members"]
    assert [(m["user_id"], m["position"], m["priority"]) for m in members] == [
        (world.bob_id, 0, 1), (world.alice_id, 1, 0)]
    hours = {"tue": [["08:00", "12:00"]]}
    detail = api.put(f"/calendars/{cal['id']}/members/{world.bob_id}/availability",
                     {"availability": hours, "date_overrides": {"2026-11-10": []}}).get_json()
    bob = next(m for m in detail["members"] if m["user_id"] == world.bob_id)
    assert bob["availability"] == hours and bob["date_overrides"] == {"2026-11-10": []}
    assert api.put(f"/calendars/{cal['id']}/members/nobody/availability", {}).status_code == 404
    assert api.delete(f"/calendars/{cal['id']}").status_code == 204
    assert api.get(f"/calendars/{cal['id']}").status_code == 404
    with factory() as s:
        assert s.query(CalendarMember).filter_by(calendar_id=cal["id"]).count() == 0


def test_a_calendar_with_appointments_is_not_deleted(api, world, clock):
    api.post("/appointments", {"calendar_id": world.calendar_id, "contact_id": world.dana_id,
                               "start_time": TUESDAY_10_NY.isoformat()})
    response = api.delete(f"/calendars/{world.calendar_id}")
    assert response.status_code == 409 and "calendar_id" in error_fields(response)


def test_free_slots_in_a_zone(api, world):
    cal = _create(api, name="Hours", kind="personal", availability={"tue": [["09:00", "11:00"]]},
                  members=[{"user_id": world.alice_id}])
    api.post("/appointments", {"calendar_id": cal["id"], "contact_id": world.dana_id,
                               "start_time": TUESDAY_10_NY.isoformat()})
    body = api.get(f"/calendars/{cal['id']}/slots?days=2&timezone=Europe/London").get_json()
    assert body["timezone"] == "Europe/London"
    assert [x["local_start"] for x in body["items"]] == [
        "2026-11-03T14:00:00+00:00", "2026-11-03T14:30:00+00:00", "2026-11-03T15:30:00+00:00"]
    assert body["items"][0]["hosts"] == [world.alice_id]
    assert "timezone" in error_fields(api.get(f"/calendars/{cal['id']}/slots?timezone=Nowhere/Here"))
    assert "days" in error_fields(api.get(f"/calendars/{cal['id']}/slots?days=500"))


def test_booking_api_enforces_hours_and_past_with_flags(api, world):
    api.patch(f"/calendars/{world.calendar_id}", {"availability": HOURS})
    night = datetime(2026, 11, 3, 8, 11, tzinfo=UTC).isoformat()
    base = {"calendar_id": world.calendar_id, "contact_id": world.dana_id}
    refused = api.post("/appointments", {**base, "start_time": night})
    assert refused.status_code == 409 and "start_time" in error_fields(refused)
    assert api.post("/appointments", {**base, "start_time": night, "override_hours": True}).status_code == 201
    past = api.post("/appointments", {**base, "start_time": "2020-01-01T15:00:00Z"})
    assert past.status_code == 422 and "start_time" in error_fields(past)
    recorded = api.post("/appointments", {**base, "start_time": "2020-01-01T15:00:00Z", "record_past": True})
    assert recorded.status_code == 201 and recorded.get_json()["record_past"] is True
    assert recorded.get_json()["meeting"]["state"] == "none"


def test_recurring_series_books_each_occurrence(api, world, factory):
    body = {"contact_id": world.dana_id, "start_time": TUESDAY_10_NY.isoformat(), "recurrence": "FREQ=WEEKLY;COUNT=6"}
    response = api.post(f"/calendars/{world.calendar_id}/recurring-appointments", body)
    assert response.status_code == 201, response.get_json()
    items = response.get_json()["items"]
    assert len(items) == 6 and all(i["is_recurring"] for i in items)
    # Same wall-clock time in New York across DST? (Nov 3 onwards is EST all along: 15:00 UTC.)
    assert [i["start_time"] for i in items] == [(TUESDAY_10_NY + timedelta(weeks=w)).isoformat() for w in range(6)]
    assert len({i["recurrence_id"] for i in items}) == 1
    assert all(i["meeting"]["state"] == "pending" for i in items)
    with factory() as s:
        meetings = {a.meeting_id for a in s.query(Appointment).filter(Appointment.recurrence_id == items[0]["recurrence_id"])}
        assert len(meetings) == 6  # each occurrence its own meeting
    unbounded = api.post(f"/calendars/{world.calendar_id}/recurring-appointments",
                         {**body, "recurrence": "FREQ=DAILY"})
    assert unbounded.status_code == 422 and "recurrence" in error_fields(unbounded)
    # A clash in any occurrence refuses the whole series, naming it.
    before = count(factory, Appointment)
    api.patch(f"/calendars/{world.calendar_id}", {"appointments_per_slot": 1})
    clash = api.post(f"/calendars/{world.calendar_id}/recurring-appointments",
                     {**body, "start_time": (TUESDAY_10_NY - timedelta(days=1)).isoformat(), "recurrence": "FREQ=DAILY;COUNT=3",
                      "assigned_user_id": items[0]["assigned_user_id"]})
    assert clash.status_code == 409 and "recurrence[1]" in error_fields(clash)
    assert count(factory, Appointment) == before


def test_title_template_renders_merge_fields(api, world):
    api.patch(f"/calendars/{world.calendar_id}", {"title_template": "{{contact.name}} – {{calendar.name}}"})
    appt = api.post("/appointments", {"calendar_id": world.calendar_id, "contact_id": world.dana_id,
                                      "start_time": TUESDAY_10_NY.isoformat()}).get_json()
    assert appt["title"] == "Dana Contact – Consultation"
