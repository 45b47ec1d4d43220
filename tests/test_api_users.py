"""``/api/v1/users``: users with their Zoom status, starting a Zoom connection, disconnecting, the default
meeting location (Zoom only once the user has connected) and a calendar member's meeting location."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from automations.store.models import CalendarMember, User
from tests.factories import book
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    other_api_fixture,
    other_world_fixture,
    shape_fields,
    spy_runtime_fixture,
    sqlite_only,
)
from tests.zoom_fixtures import (  # noqa: F401  (fixtures)
    browser_fixture,
    connect_ok,
    fake_zoom_fixture,
    zoom_app_fixture,
    zoom_provider_fixture,
    zoom_runtime_fixture,
    zoom_settings_fixture,
)


def _members(factory, user_id: str) -> list[str | None]:
    with factory() as s:
        return [m.meeting_location for m in s.scalars(select(CalendarMember).where(CalendarMember.user_id == user_id))]


def test_list_and_get_users_with_zoom_status(browser, fake_zoom, world):
    listing = browser.api("GET", "/users").get_json()
    assert [u["name"] for u in listing["items"]] == ["Alice Admin", "Bob Host"]
    alice = listing["items"][0]
    assert set(alice) == set(shape_fields("User")) and set(alice["zoom"]) == set(shape_fields("ZoomConnectionInfo"))
    assert alice["zoom"] == {"status": "not_connected", "email": None, "status_reason": None, "connected_at": None,
                             "requests_today": 0, "daily_limit": 100}
    connect_ok(browser, world.alice_id, fake_zoom.add_user(email="a@zoom.example"))
    got = browser.api("GET", f"/users/{world.alice_id}").get_json()
    assert got["zoom"]["status"] == "active" and got["zoom"]["email"] == "a@zoom.example"
    assert browser.api("GET", "/users/nope").status_code == 404


def test_connect_returns_a_single_use_authorize_url(browser, fake_zoom, world):
    response = browser.api("POST", f"/users/{world.bob_id}/zoom/connect")
    body = response.get_json()
    assert response.status_code == 200 and set(body) == set(shape_fields("ZoomAuthorization"))
    url = urlsplit(body["authorize_url"])
    query = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake_zoom.oauth_base}/oauth/authorize"
    assert query["client_id"] == [fake_zoom.client_id] and query["response_type"] == ["code"]
    assert query["redirect_uri"] == ["http://punctual.test/integrations/zoom/callback"]
    assert len(query["state"][0]) >= 32 and query["code_challenge_method"] == ["S256"]
    audit = browser.api("GET", f"/audit?entity_id={world.bob_id}").get_json()["items"]
    assert audit[0]["action"] == "users.zoom_connect" and audit[0]["actor_kind"] == "api_key"


def test_users_of_another_location_are_not_found(browser, other_world):
    assert browser.api("POST", f"/users/{other_world.alice_id}/zoom/connect").status_code == 404
    assert browser.api("DELETE", f"/users/{other_world.alice_id}/zoom").status_code == 404
    put = browser.api("PUT", f"/users/{other_world.alice_id}/default-meeting-location", json={"location": None})
    assert put.status_code == 404


def test_zoom_default_needs_the_user_to_have_connected_then_applies_to_calendars(browser, fake_zoom, factory, world):
    path = f"/users/{world.bob_id}/default-meeting-location"
    refused = browser.api("PUT", path, json={"location": "Zoom", "apply_to_calendars": True})
    assert refused.status_code == 409
    error = refused.get_json()["error"]
    assert "Bob Host has not connected a Zoom account" in error["message"] and "location" in error["fields"]
    with factory() as s:
        assert s.get(User, world.bob_id).default_meeting_location is None
    # Text is always fine; without apply_to_calendars the calendars keep their own setting.
    ok = browser.api("PUT", path, json={"location": "  https://meet.example.com/bob  "})
    assert ok.status_code == 200
    assert ok.get_json()["user"]["default_meeting_location"] == "https://meet.example.com/bob"
    assert ok.get_json()["calendars_updated"] == 0 and _members(factory, world.bob_id) == ["zoom"]
    connect_ok(browser, world.bob_id, fake_zoom.add_user())
    applied = browser.api("PUT", path, json={"location": "zoom", "apply_to_calendars": False})
    assert applied.status_code == 200 and applied.get_json()["user"]["default_meeting_location"] == "zoom"
    cleared = browser.api("PUT", path, json={"location": "", "apply_to_calendars": True})
    assert cleared.get_json() | {"user": None} == {"user": None, "calendars_updated": 1}
    assert _members(factory, world.bob_id) == [None]


def test_member_meeting_location(browser, fake_zoom, factory, world):
    path = f"/calendars/{world.calendar_id}/members/{world.bob_id}/meeting-location"
    text = browser.api("PUT", path, json={"location": "Room 4"})
    assert text.status_code == 200
    members = {m["user_id"]: m["meeting_location"] for m in text.get_json()["members"]}
    assert members[world.bob_id] == "Room 4"
    assert browser.api("PUT", path, json={"location": "zoom"}).status_code == 409
    connect_ok(browser, world.bob_id, fake_zoom.add_user())
    assert browser.api("PUT", path, json={"location": "zoom"}).status_code == 200
    assert _members(factory, world.bob_id) == ["zoom"]
    not_member = browser.api("PUT", f"/calendars/{world.static_calendar_id}/members/{world.bob_id}/meeting-location",
                             json={"location": "x"})
    assert not_member.status_code == 422
    bad = browser.api("PUT", path, json={"location": "x" * 1001})
    assert bad.status_code == 422 and "location" in bad.get_json()["error"]["fields"]
    missing = browser.api("PUT", path, json={})
    assert missing.status_code == 422


def test_disconnect_validates_its_body(browser, world):
    bad = browser.api("DELETE", f"/users/{world.alice_id}/zoom", json={"delete_future_meetings": "yes"})
    assert bad.status_code == 422 and "delete_future_meetings" in bad.get_json()["error"]["fields"]
    ok = browser.api("DELETE", f"/users/{world.alice_id}/zoom", json={"delete_future_meetings": True})
    assert ok.status_code == 200 and ok.get_json()["status"] == "not_connected"


def test_without_zoom_settings_connect_is_refused_clearly_and_the_sandbox_is_used(api, world, factory, clock,
                                                                                 runtime, app):
    response = api.post(f"/users/{world.alice_id}/zoom/connect")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "zoom_not_configured" and "ZOOM_CLIENT_ID" in error["message"]
    callback = app.test_client().get("/integrations/zoom/callback?code=x&state=y")
    assert callback.status_code == 404 and "not set up" in callback.get_data(as_text=True)
    with factory() as s, s.begin():
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=1), assigned_user_id=world.alice_id)
        appt_id = appt.id
    runtime.tick()
    assert api.get(f"/appointments/{appt_id}").get_json()["meeting"]["provider"] == "sandbox"
