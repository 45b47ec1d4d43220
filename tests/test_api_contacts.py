"""Contacts and calendars through the API: create, get, list with pagination, patch (which emits
``contact.updated`` and wakes the worker), and calendars with their members."""

from __future__ import annotations

from automations.store.models import Contact, DomainEvent
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    count,
    counts,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)


def test_create_and_get_contact(api, world):
    response = api.post("/contacts", {"first_name": "Gia", "last_name": "Lee", "email": "gia@example.com",
                                      "phone": "212-555-0177", "timezone": "Europe/Paris", "tags": ["vip"],
                                      "custom_fields": {"favorite_color": "teal"}})
    assert response.status_code == 201, response.get_json()
    contact = response.get_json()
    assert contact["name"] == "Gia Lee" and contact["phone"] == "+12125550177"
    assert contact["tags"] == ["vip"] and contact["custom_fields"] == {"favorite_color": "teal"}
    assert contact["sms_dnd"] is False
    assert api.get(f"/contacts/{contact['id']}").get_json() == contact


def test_create_contact_validation(api, world, factory):
    before = count(factory, Contact)
    cases = [
        ({"first_name": "A", "phone": "not a phone"}, "phone"),
        ({"first_name": "A", "email": "nope"}, "email"),
        ({"first_name": "A", "timezone": "Mars/Olympus"}, "timezone"),
        ({"first_name": "A", "custom_fields": {"shoe_size": 9}}, "custom_fields"),
        ({"first_name": "A", "custom_fields": {"favorite_color": {"deep": 1}}}, "custom_fields.favorite_color.value"),
        ({"first_name": "A", "sms_dnd": 1}, "sms_dnd"),
        ({"first_name": "A", "tags": "vip"}, "tags"),
        ({"first_name": "x" * 101}, "first_name"),
        ({"first_name": 5}, "first_name"),
        ({"frist_name": "A"}, "frist_name"),
        ({}, "$"),
    ]
    for body, path in cases:
        response = api.post("/contacts", body)
        assert response.status_code == 422, (body, response.get_json())
        assert path in error_fields(response), (body, error_fields(response))
    assert count(factory, Contact) == before


def test_list_contacts_paginates_without_gaps(api, world):
    for i in range(5):
        api.post("/contacts", {"first_name": f"C{i}"})
    pages, cursor = [], None
    while True:
        body = api.get("/contacts?limit=3" + (f"&cursor={cursor}" if cursor else "")).get_json()
        pages.append([c["id"] for c in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [3, 3, 1]  # Dana, Eli and the five new ones
    assert len({i for p in pages for i in p}) == 7
    third = api.get("/contacts?limit=1&email=dana@example.com").get_json()["items"]
    assert [c["id"] for c in third] == [world.dana_id]


def test_patch_contact_emits_event_and_wakes(api, world, factory, spy_runtime):
    before = count(factory, DomainEvent)
    response = api.patch(f"/contacts/{world.dana_id}", {"tags": ["vip"], "sms_dnd": True, "phone": None})
    assert response.status_code == 200
    body = response.get_json()
    assert body["tags"] == ["vip"] and body["sms_dnd"] is True and body["phone"] is None
    assert body["first_name"] == "Dana"  # untouched
    assert spy_runtime.wakes == 1
    with factory() as s:
        event = s.query(DomainEvent).order_by(DomainEvent.id.desc()).first()
        assert event.kind == "contact.updated" and sorted(event.payload["changed"]) == ["phone", "sms_dnd", "tags"]
    assert count(factory, DomainEvent) == before + 1
    # The same patch again changes nothing: no event, no wake.
    api.patch(f"/contacts/{world.dana_id}", {"tags": ["vip"]})
    assert count(factory, DomainEvent) == before + 1 and spy_runtime.wakes == 1


def test_bad_patch_changes_nothing(api, world, factory):
    before = counts(factory, DomainEvent)
    response = api.patch(f"/contacts/{world.dana_id}", {"first_name": "Dee", "phone": "12"})
    assert response.status_code == 422 and "phone" in error_fields(response)
    assert api.get(f"/contacts/{world.dana_id}").get_json()["first_name"] == "Dana"
    assert counts(factory, DomainEvent) == before
    assert api.patch(f"/contacts/{world.dana_id}", {"first_name": None}).status_code == 422
    assert api.patch("/contacts/nope", {"first_name": "X"}).status_code == 404


def test_calendars_list_and_members(api, world):
    listed = api.get("/calendars").get_json()["items"]
    assert {c["id"] for c in listed} == {world.calendar_id, world.static_calendar_id}
    detail = api.get(f"/calendars/{world.calendar_id}").get_json()
    assert detail["name"] == "Consultation" and detail["kind"] == "round_robin"
    assert [(m["user_id"], m["name"], m["meeting_location"]) for m in detail["members"]] == [
        (world.alice_id, "Alice Admin", "zoom"), (world.bob_id, "Bob Host", "zoom")]
    static = api.get(f"/calendars/{world.static_calendar_id}").get_json()
    assert static["members"] == [] and static["meeting_location"] == "https://meet.example.com/static-room"
    assert api.get("/calendars/unknown").status_code == 404
