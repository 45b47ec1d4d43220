"""Settings and My profile through their pages: location, users, API keys, calendar meeting locations,
and Integrations → Zoom against the fake Zoom (connect through the real OAuth round trip, default meeting
location with "apply to all my calendars", disconnect with "also delete future meetings")."""

from __future__ import annotations

from sqlalchemy import select

from automations.booking import accounts
from automations.store.models import ApiKey, CalendarMember, Location, Notification, User
from tests.test_pages_fixtures import PASSWORD, Browser
from tests.zoom_fixtures import (  # noqa: F401  (fixtures)
    browser_fixture,
    connection,
    fake_zoom_fixture,
    zoom_app_fixture,
    zoom_provider_fixture,
    zoom_runtime_fixture,
    zoom_settings_fixture,
)


def _page_browser(app, factory, world) -> Browser:
    with factory() as s, s.begin():
        accounts.set_password(s.get(User, world.alice_id), PASSWORD)
    b = Browser(app.test_client())
    b.sign_in()
    return b


def test_profile_zoom_connect_default_location_and_disconnect(zoom_app, browser, fake_zoom, factory, world, clock):
    page = _page_browser(zoom_app, factory, world)
    html = page.get("/profile").get_data(as_text=True)
    assert "Connect to Zoom" in html
    r = page.post("/profile/zoom/connect")
    assert r.status_code == 302 and r.headers["Location"].startswith(fake_zoom.oauth_base)
    host = fake_zoom.add_user(email="alice.zoom@example.com")
    assert browser.callback(browser.approve_at_zoom(r.headers["Location"], host)).status_code == 200
    html = page.get("/profile").get_data(as_text=True)
    assert "alice.zoom@example.com" in html and "active" in html and "Zoom requests today" in html

    # Default meeting location: Zoom, applied to all my calendars.
    with factory() as s, s.begin():
        for m in s.scalars(select(CalendarMember).where(CalendarMember.user_id == world.alice_id)):
            m.meeting_location = "https://meet.example.com/old"
    r = page.post("/profile/meeting-location", {"kind": "zoom", "apply_to_calendars": "on"})
    assert r.status_code == 302
    with factory() as s:
        assert s.get(User, world.alice_id).default_meeting_location == "zoom"
        assert {m.meeting_location for m in s.scalars(select(CalendarMember).where(
            CalendarMember.user_id == world.alice_id))} == {"zoom"}

    # An admin cannot pick Zoom for Bob, who has not connected: the reason is shown, nothing changes.
    r = page.post(f"/settings/calendars/{world.calendar_id}/members/{world.bob_id}", {"kind": "static", "static": "Room 4"})
    assert r.status_code == 302
    with factory() as s:
        member = s.scalar(select(CalendarMember).where(CalendarMember.user_id == world.bob_id,
                                                       CalendarMember.calendar_id == world.calendar_id))
        assert member.meeting_location == "Room 4"
    r = page.post(f"/settings/calendars/{world.calendar_id}/members/{world.bob_id}", {"kind": "zoom"})
    assert "has not connected a Zoom account" in page.get("/settings/calendars").get_data(as_text=True)

    # Disconnect, also deleting future meetings.
    r = page.post("/profile/zoom/disconnect", {"delete_future_meetings": "on"})
    assert r.status_code == 302
    conn = connection(factory, world.alice_id)
    assert conn is None or conn.status == "disconnecting"


def test_location_users_and_api_keys(zoom_app, factory, world):
    page = _page_browser(zoom_app, factory, world)
    r = page.post("/settings", {"name": "", "timezone": "Mars/Olympus", "email": "nope", "phone": "call me"})
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "There are 4 problems" in html and 'href="#field-timezone"' in html
    r = page.post("/settings", {"name": "Renamed Clinic", "timezone": "Europe/London", "email": "hi@clinic.example",
                                "phone": "+442071234567"})
    assert r.status_code == 302
    with factory() as s:
        loc = s.get(Location, world.location_id)
        assert (loc.name, loc.timezone, loc.email) == ("Renamed Clinic", "Europe/London", "hi@clinic.example")

    # A new user who can sign in; a duplicate email is refused by field.
    r = page.post("/settings/users", {"first_name": "Uma", "email": "uma@example.com", "password": "short", "role": "user"})
    assert r.status_code == 422 and "at least 8 characters" in r.get_data(as_text=True)
    r = page.post("/settings/users", {"first_name": "Uma", "email": "uma@example.com", "password": PASSWORD, "role": "user"})
    assert r.status_code == 302
    r = page.post("/settings/users", {"first_name": "Uma", "email": "UMA@example.com", "password": PASSWORD, "role": "user"})
    assert r.status_code == 422 and "already a user here" in r.get_data(as_text=True)
    uma = Browser(zoom_app.test_client())
    uma.sign_in("uma@example.com")

    # An API key: shown once, works, then revoked.
    html = page.post("/settings/api-keys", {"name": "website"}).get_data(as_text=True)
    key = html.split('id="new-key">', 1)[1].split("<", 1)[0]
    assert key.startswith("pk_") and key not in page.get("/settings/api-keys").get_data(as_text=True)
    api = zoom_app.test_client()
    assert api.get("/api/v1/contacts", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with factory() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "website"))
    assert page.post(f"/settings/api-keys/{key_id}/revoke").status_code == 302
    assert api.get("/api/v1/contacts", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_notifications_mark_read(zoom_app, factory, world, clock):
    with factory() as s, s.begin():
        s.add(Notification(location_id=world.location_id, user_id=world.alice_id, title="Zoom broken",
                           body="reconnect", created_at=clock.now()))
    page = _page_browser(zoom_app, factory, world)
    html = page.get("/notifications").get_data(as_text=True)
    assert "Notifications: 1 unread" in html and "Zoom broken" in html
    assert page.post("/notifications/read").status_code == 302
    assert "Notifications: 0 unread" in page.get("/notifications").get_data(as_text=True)
