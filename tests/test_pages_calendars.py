"""Calendars through the signed-in pages: each kind created with its settings, errors beside fields and in
the summary (nothing saved), edit keeping members' own hours, delete, a member's weekly hours and date
overrides, linking a member's Google calendar (fake Google through the real client), the week view with
appointments and Google busy time, another location's ids 404; the profile's Google Calendar block; the
settings page's API keys (rotate, revoke) through the API's key functions; login throttling counted in the
database so two app instances share it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from automations.booking import appointments
from automations.google.connections import GoogleConnections
from automations.store.models import ApiKey, BusyBlock, Calendar, CalendarMember, GoogleConnection, Location
from automations.store.secrets_box import SecretsBox
from providers.google_calendar import GoogleCalendarClient
from tests.fakes.google_server import FakeGoogle, parse_redirect
from tests.test_pages_fixtures import (  # noqa: F401  (fixtures)
    PASSWORD,
    Browser,
    app_fixture,
    browser_fixture,
    signed_in_fixture,
    sqlite_only,
    two_worlds_fixture,
)
from web.app import create_app
from web.pages import auth

HOURS = {"availability.mon.from": "09:00", "availability.mon.to": "17:00",
         "availability.tue.from": "09:00", "availability.tue.to": "17:00"}


def _form(two_worlds, **extra) -> dict:
    one, _ = two_worlds
    base = {"name": "Intro call", "kind": "round_robin", "slot_minutes": "30", "slot_interval_minutes": "15",
            "buffer_before_minutes": "5", "buffer_after_minutes": "10", "min_notice_minutes": "60",
            "booking_window_days": "30", "appointments_per_slot": "1", "auto_confirm": "on",
            "title_template": "{{contact.name}} – Intro", "description": "A first talk", "meeting_location": "",
            f"member-{one.alice_id}": "on", f"m-{one.alice_id}-priority": "5", f"m-{one.alice_id}-kind": "static",
            f"m-{one.alice_id}-static": "https://meet.example.com/alice",
            f"member-{one.bob_id}": "on", f"m-{one.bob_id}-priority": "1", f"m-{one.bob_id}-kind": "none", **HOURS}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


def _calendar(factory, name: str) -> Calendar:
    with factory() as s:
        cal = s.scalar(select(Calendar).where(Calendar.name == name))
        assert cal is not None
        cal.members  # noqa: B018  (loaded before the session closes)
        s.expunge_all()
        return cal


def test_nav_and_list_show_calendars_with_booking_links(signed_in):
    html = signed_in.get("/calendars").get_data(as_text=True)
    assert 'href="/calendars"' in signed_in.get("/").get_data(as_text=True)
    assert "Consultation" in html and "round robin" in html and "Alice Admin, Bob Host" in html
    assert "/book/test-clinic/consultation" in html and "Walk-in" in html


def test_create_each_kind_with_every_setting(signed_in, two_worlds, factory):
    one, _ = two_worlds
    r = signed_in.post("/calendars/new", _form(two_worlds))
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    cal = _calendar(factory, "Intro call")
    assert (cal.kind, cal.slot_minutes, cal.slot_interval_minutes, cal.buffer_before_minutes, cal.buffer_after_minutes,
            cal.min_notice_minutes, cal.booking_window_days, cal.appointments_per_slot, cal.auto_confirm) == (
        "round_robin", 30, 15, 5, 10, 60, 30, 1, True)
    assert cal.title_template == "{{contact.name}} – Intro" and cal.description == "A first talk"
    assert cal.availability == {"mon": [["09:00", "17:00"]], "tue": [["09:00", "17:00"]]}
    members = {m.user_id: (m.priority, m.meeting_location) for m in cal.members}
    assert members == {one.alice_id: (5, "https://meet.example.com/alice"), one.bob_id: (1, None)}

    solo = _form(two_worlds, name="Alice 1:1", kind="personal", **{f"member-{one.bob_id}": None})
    assert signed_in.post("/calendars/new", solo).status_code == 302
    assert [m.user_id for m in _calendar(factory, "Alice 1:1").members] == [one.alice_id]
    assert signed_in.post("/calendars/new", _form(two_worlds, name="Team", kind="collective")).status_code == 302
    yoga = _form(two_worlds, name="Yoga", kind="class", appointments_per_slot="12", auto_confirm=None)
    assert signed_in.post("/calendars/new", yoga).status_code == 302
    assert (_calendar(factory, "Yoga").appointments_per_slot, _calendar(factory, "Yoga").auto_confirm) == (12, False)
    desk = _form(two_worlds, name="Front desk", kind="unassigned", meeting_location="12 Main St",
                 **{f"member-{one.alice_id}": None, f"member-{one.bob_id}": None})
    assert signed_in.post("/calendars/new", desk).status_code == 302
    assert _calendar(factory, "Front desk").meeting_location == "12 Main St"


def test_errors_name_the_fields_and_nothing_is_saved(signed_in, two_worlds, factory):
    bad = _form(two_worlds, name="Broken", kind="personal", slot_minutes="two", booking_window_days="0",
                **{"availability.wed.from": "10:00"})
    r = signed_in.post("/calendars/new", bad)
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "There is a problem" in html
    assert 'href="#field-availability-wed"' in html and "enter both a from and a to time" in html
    bad.pop("availability.wed.from")
    r = signed_in.post("/calendars/new", bad)
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "slot_minutes" in html and "booking_window_days" in html
    assert 'id="field-slot_minutes-error"' in html
    r = signed_in.post("/calendars/new", _form(two_worlds, name="Broken", kind="personal"))
    assert r.status_code == 422 and "exactly one member" in r.get_data(as_text=True)
    r = signed_in.post("/calendars/new", _form(two_worlds, name="Broken", **{"availability.mon.to": "08:00"}))
    assert r.status_code == 422 and "must be after the start" in r.get_data(as_text=True)
    # Zoom for Bob, who has not connected Zoom: refused beside the members, nothing saved.
    r = signed_in.post("/calendars/new", _form(two_worlds, name="Broken", **{f"m-{two_worlds[0].bob_id}-kind": "zoom"}))
    assert r.status_code == 422 and "has not connected a Zoom account" in r.get_data(as_text=True)
    with factory() as s:
        assert s.scalar(select(Calendar).where(Calendar.name == "Broken")) is None


def test_edit_keeps_member_hours_and_delete(signed_in, two_worlds, factory, clock):
    one, _ = two_worlds
    assert signed_in.post("/calendars/new", _form(two_worlds)).status_code == 302
    cal = _calendar(factory, "Intro call")
    r = signed_in.post(f"/calendars/{cal.id}/members/{one.bob_id}", {
        "availability.mon.from": "08:00", "availability.mon.to": "12:00", "override_rows": "3",
        "ov-0-date": "2026-12-24", "ov-0-off": "on", "ov-1-date": "2026-12-27", "ov-1-from": "10:00", "ov-1-to": "12:00"})
    assert r.status_code == 302, r.get_data(as_text=True)[:2000]
    edited = _form(two_worlds, name="Intro call (new)", slot_minutes="45")
    assert signed_in.post(f"/calendars/{cal.id}", edited).status_code == 302
    cal = _calendar(factory, "Intro call (new)")
    bob = next(m for m in cal.members if m.user_id == one.bob_id)
    assert cal.slot_minutes == 45 and bob.availability == {"mon": [["08:00", "12:00"]]}
    assert bob.date_overrides == {"2026-12-24": [], "2026-12-27": [["10:00", "12:00"]]}
    page = signed_in.get(f"/calendars/{cal.id}/members/{one.bob_id}").get_data(as_text=True)
    assert 'value="2026-12-24"' in page and "America/Chicago" in page

    # A row with a date but no hours is an error beside that row.
    r = signed_in.post(f"/calendars/{cal.id}/members/{one.bob_id}", {"override_rows": "1", "ov-0-date": "2026-12-31"})
    assert r.status_code == 422 and "2026-12-31: enter from and to times" in r.get_data(as_text=True)

    # A calendar with appointments is not deleted; one without is.
    with factory() as s, s.begin():
        appointments.book(s, location=s.get(Location, one.location_id), calendar_id=cal.id, contact_id=one.dana_id,
                          start_at=datetime(2026, 11, 3, 15, 0, tzinfo=UTC), now=clock.now(), override_hours=True)
    r = signed_in.post(f"/calendars/{cal.id}/delete")
    assert "was not deleted" in signed_in.get(r.headers["Location"]).get_data(as_text=True)
    assert signed_in.post("/calendars/new", _form(two_worlds, name="Temp")).status_code == 302
    temp = _calendar(factory, "Temp")
    assert signed_in.post(f"/calendars/{temp.id}/delete").status_code == 302
    with factory() as s:
        assert s.get(Calendar, temp.id) is None


def test_week_view_shows_appointments_and_blocked_time(signed_in, two_worlds, factory, clock):
    one, _ = two_worlds
    start = clock.now() + timedelta(days=1)
    with factory() as s, s.begin():
        appt = appointments.book(s, location=s.get(Location, one.location_id), calendar_id=one.calendar_id,
                                 contact_id=one.dana_id, start_at=start, now=clock.now(), override_hours=True)
        title = appt.title
        s.add(BusyBlock(user_id=one.bob_id, source="google", external_id="x1", start_at=start + timedelta(hours=3),
                        end_at=start + timedelta(hours=4), title="Dentist", updated_at=clock.now()))
    html = signed_in.get(f"/calendars/{one.calendar_id}/view").get_data(as_text=True)
    assert title in html and "Dentist" in html and "blocked" in html and "America/New_York" in html


def test_another_locations_calendar_is_not_found(signed_in, two_worlds, factory, clock):
    _, two = two_worlds
    with factory() as s:
        other = s.scalar(select(Calendar).where(Calendar.location_id == two.location_id))
    for url in (f"/calendars/{other.id}", f"/calendars/{other.id}/view",
                f"/calendars/{other.id}/members/{two.alice_id}"):
        assert signed_in.get(url).status_code == 404, url
    assert signed_in.post(f"/calendars/{other.id}/delete").status_code == 404
    assert "Consultation" not in signed_in.get("/calendars").get_data(as_text=True).split("Walk-in")[1]


# -- Google: profile and member calendar -----------------------------------------------------------------------


@pytest.fixture
def google(clock) -> Iterator[FakeGoogle]:
    with FakeGoogle(clock=clock) as fake:
        fake.add_account("alice@example.com", time_zone="America/New_York")
        fake.login_as("alice@example.com")
        yield fake
    assert not fake.errors, fake.errors


@pytest.fixture
def google_app(app, google, factory, clock):
    with httpx.Client(timeout=10) as http:
        client = GoogleCalendarClient(client_id=google.client_id, client_secret=google.client_secret,
                                      redirect_uri=google.redirect_uri, http=http, oauth_base=google.oauth_base,
                                      token_base=google.token_base, api_base=google.api_base, clock=clock)
        app.extensions["punctual.google"] = GoogleConnections(
            factory, client, SecretsBox(app.extensions["punctual"].settings.secret_key))
        yield app


def test_profile_google_connect_link_member_calendar_and_disconnect(google_app, signed_in, two_worlds, factory):
    one, _ = two_worlds
    html = signed_in.get("/profile").get_data(as_text=True)
    assert "Google Calendar" in html and "Connect to Google Calendar" in html
    r = signed_in.post("/profile/google/connect")
    assert r.status_code == 302 and "code_challenge_method=S256" in r.headers["Location"]
    with httpx.Client() as user_browser:
        consent = user_browser.get(r.headers["Location"], follow_redirects=False)
    back = parse_redirect(consent.headers["Location"])
    assert signed_in.get("/integrations/google/callback", query_string=back).status_code == 200
    assert "Status: <span class=\"pill active\">active</span>" in signed_in.get("/profile").get_data(as_text=True)

    page = signed_in.get(f"/calendars/{one.calendar_id}/members/{one.alice_id}").get_data(as_text=True)
    assert 'value="alice@example.com"' in page
    r = signed_in.post(f"/calendars/{one.calendar_id}/members/{one.alice_id}/google",
                       {"google_calendar_id": "alice@example.com"})
    assert r.status_code == 302
    with factory() as s:
        member = s.scalar(select(CalendarMember).where(CalendarMember.calendar_id == one.calendar_id,
                                                       CalendarMember.user_id == one.alice_id))
        assert member.google_calendar_id == "alice@example.com"
    # Saving the calendar form keeps the member's Google calendar.
    cal_form = _form(two_worlds, name="Consultation", **{f"m-{one.alice_id}-kind": "none"})
    assert signed_in.post(f"/calendars/{one.calendar_id}", cal_form).status_code == 302
    with factory() as s:
        member = s.scalar(select(CalendarMember).where(CalendarMember.calendar_id == one.calendar_id,
                                                       CalendarMember.user_id == one.alice_id))
        assert member.google_calendar_id == "alice@example.com"

    assert signed_in.post("/profile/google/disconnect").status_code == 302
    with factory() as s:
        assert s.scalar(select(GoogleConnection)) is None
    assert "Connect to Google Calendar" in signed_in.get("/profile").get_data(as_text=True)


# -- API keys and sign-in throttling ---------------------------------------------------------------------------


def test_api_keys_rotate_and_revoke_through_the_api_functions(signed_in, app, factory):
    html = signed_in.post("/settings/api-keys", {"name": "website"}).get_data(as_text=True)
    key = html.split('id="new-key">', 1)[1].split("<", 1)[0]
    api = app.test_client()
    assert api.get("/api/v1/contacts", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with factory() as s:
        key_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "website"))
    html = signed_in.post(f"/settings/api-keys/{key_id}/rotate").get_data(as_text=True)
    new_key = html.split('id="new-key">', 1)[1].split("<", 1)[0]
    assert new_key != key and "revoked" in html
    assert api.get("/api/v1/contacts", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert api.get("/api/v1/contacts", headers={"Authorization": f"Bearer {new_key}"}).status_code == 200
    with factory() as s:
        new_id = s.scalar(select(ApiKey.id).where(ApiKey.name == "website", ApiKey.revoked_at.is_(None)))
    assert signed_in.post(f"/settings/api-keys/{new_id}/revoke").status_code == 302
    assert api.get("/api/v1/contacts", headers={"Authorization": f"Bearer {new_key}"}).status_code == 401
    with factory() as s:  # revoked, not deleted: the list still shows it, as the API's does
        assert s.scalar(select(ApiKey.revoked_at).where(ApiKey.id == new_id)) is not None


def test_login_throttle_is_shared_by_two_app_instances(app, factory, clock, runtime):
    second = create_app(factory=factory, clock=clock, runtime=runtime)
    second.testing = True
    first_browser, second_browser = Browser(app.test_client()), Browser(second.test_client())
    for i in range(auth.MAX_FAILURES):
        b = first_browser if i % 2 == 0 else second_browser
        r = b.post("/login", {"email": "alice@example.com", "password": "wrong password"})
        assert r.status_code == 422
    for b in (first_browser, second_browser):
        r = b.post("/login", {"email": "alice@example.com", "password": PASSWORD})
        assert r.status_code == 429 and "Too many failed sign-ins" in r.get_data(as_text=True)
    clock.advance(minutes=16)
    assert second_browser.post("/login", {"email": "alice@example.com", "password": PASSWORD}).status_code == 302


def test_hostile_form_input_is_a_4xx_never_a_500(signed_in, two_worlds, app):
    one, _ = two_worlds
    r = signed_in.post(f"/calendars/{one.calendar_id}/members/{one.bob_id}", {"override_rows": "99999999999"})
    assert r.status_code == 302  # the row count is bounded; no rows given, nothing wrong
    r = signed_in.post("/calendars/new", _form(two_worlds, name="x" * 300, kind="weekly", timezone="Mars/Base",
                                               **{f"m-{one.alice_id}-priority": "lots"}))
    html = r.get_data(as_text=True)
    assert r.status_code == 422 and "name" in html and "kind" in html
    bad_date = {"override_rows": "1", "ov-0-date": "2026-13-45", "ov-0-off": "on"}
    r = signed_in.post(f"/calendars/{one.calendar_id}/members/{one.bob_id}", bad_date)
    assert r.status_code == 422 and 'href="#field-date_overrides"' in r.get_data(as_text=True)
    # A location user sees calendars but cannot create one.
    r = signed_in.post("/settings/users", {"first_name": "Uma", "email": "uma@example.com", "password": PASSWORD,
                                           "role": "user"})
    uma = Browser(app.test_client())
    uma.sign_in("uma@example.com")
    assert uma.get("/calendars").status_code == 200
    assert uma.post("/calendars/new", _form(two_worlds, name="Uma's")).status_code == 403
