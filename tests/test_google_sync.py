"""Google Calendar both ways, end to end against the local fake Google through the real client
(``providers.google_calendar``) and the real worker: connect with OAuth + PKCE through the API and
the callback, link a member's calendar, every appointment written (created, moved, deleted) with its
meeting link, token refresh after a 401, the host's own events blocking slots, a move in Google
re-timing a waiting reminder, a delete cancelling and withdrawing pending messages, 410 → full resync,
push notifications verified by channel token, invalid_grant → broken + alert, disconnect revokes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from automations.google.connections import GoogleSettings
from automations.google.worker import GoogleWorker
from automations.store.models import (
    Appointment,
    BusyBlock,
    DomainEvent,
    Enrollment,
    GoogleConnection,
    GoogleEventLink,
    Message,
    Notification,
)
from providers.google_calendar import GoogleCalendarClient, event_id_for
from tests.factories import publish
from tests.fakes.google_server import FakeGoogle, parse_redirect
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    Api,
    app_fixture,
    confirmation_doc,
    spy_runtime_fixture,
)

ALICE_EMAIL = "alice@example.com"
TUESDAY_10_NY = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
SYNC_EVERY = timedelta(minutes=5)


@pytest.fixture
def google(clock) -> Iterator[FakeGoogle]:
    with FakeGoogle(clock=clock) as fake:
        fake.add_account(ALICE_EMAIL, time_zone="America/New_York")
        fake.login_as(ALICE_EMAIL)
        yield fake
    assert not fake.errors, fake.errors


@pytest.fixture
def gclient(google, clock) -> Iterator[GoogleCalendarClient]:
    with httpx.Client(timeout=10) as http:
        yield GoogleCalendarClient(client_id=google.client_id, client_secret=google.client_secret,
                                   redirect_uri=google.redirect_uri, http=http, oauth_base=google.oauth_base,
                                   token_base=google.token_base, api_base=google.api_base, clock=clock)


class Setup:
    def __init__(self, factory, clock, runtime, app, world, google, client):
        self.factory, self.clock, self.runtime, self.app, self.world, self.google = (
            factory, clock, runtime, app, world, google)
        self.client = client
        self.api = Api(app.test_client(), world.api_key)
        self.web = app.test_client()

    def use_google(self, push_url: str | None = None) -> None:
        settings = GoogleSettings("id", "secret", "http://127.0.0.1:5000", push_url=push_url)
        self.runtime.google = GoogleWorker(self.factory, settings, secret_key=self.runtime.settings.secret_key,
                                           owner=self.runtime.owner, clock=self.clock, client=self.client)
        self.app.extensions["punctual.google"] = self.runtime.google.connections

    def connect_and_link(self) -> None:
        started = self.api.post(f"/users/{self.world.alice_id}/google/connect")
        assert started.status_code == 200, started.get_json()
        url = started.get_json()["authorize_url"]
        assert "code_challenge_method=S256" in url and "access_type=offline" in url
        with httpx.Client() as browser:  # the user's browser at Google: consent, then the redirect
            consent = browser.get(url, follow_redirects=False)
        assert consent.status_code == 302
        back = parse_redirect(consent.headers["Location"])
        done = self.web.get("/integrations/google/callback", query_string={"state": back["state"], "code": back["code"]})
        assert done.status_code == 200 and "connected" in done.text
        # Replaying the callback fails: the state is single use.
        assert self.web.get("/integrations/google/callback", query_string=back).status_code == 400
        calendars = self.api.get(f"/users/{self.world.alice_id}/google/calendars").get_json()["items"]
        assert ALICE_EMAIL in [c["id"] for c in calendars]
        bad = self.api.put(f"/calendars/{self.world.calendar_id}/members/{self.world.alice_id}/google-calendar",
                           {"google_calendar_id": "someone-else@example.com"})
        assert bad.status_code == 422
        linked = self.api.put(f"/calendars/{self.world.calendar_id}/members/{self.world.alice_id}/google-calendar",
                              {"google_calendar_id": ALICE_EMAIL})
        assert linked.status_code == 200, linked.get_json()
        self.runtime.tick()  # first (full) sync

    def book(self, start=TUESDAY_10_NY) -> str:
        response = self.api.post("/appointments", {"calendar_id": self.world.calendar_id, "contact_id": self.world.dana_id,
                                                   "assigned_user_id": self.world.alice_id, "start_time": start.isoformat()})
        assert response.status_code == 201, response.get_json()
        return response.get_json()["id"]

    def sync_later(self) -> None:
        self.clock.advance(SYNC_EVERY)
        self.runtime.tick()

    def events(self) -> list[dict]:
        return self.google.events_of(ALICE_EMAIL)


@pytest.fixture
def g(factory, clock, runtime, app, world, google, gclient) -> Setup:
    setup = Setup(factory, clock, runtime, app, world, google, gclient)
    setup.use_google()
    return setup


def test_connect_stores_tokens_encrypted(g):
    g.connect_and_link()
    with g.factory() as s:
        conn = s.scalar(select(GoogleConnection))
        assert conn.status == "active" and conn.refresh_token_enc and conn.access_token_enc
        assert "ya29" not in conn.access_token_enc and "1//" not in conn.refresh_token_enc
    assert g.api.get(f"/users/{g.world.alice_id}/google").get_json()["status"] == "active"


def test_appointments_are_written_moved_and_deleted_in_google(g):
    g.connect_and_link()
    appt_id = g.book()
    g.runtime.tick()
    event_id = event_id_for(appt_id)
    [event] = g.events()
    assert event["id"] == event_id
    assert event["location"].startswith("https://sandbox.punctual.invalid/")  # the meeting link, once known
    assert event["location"] in event["description"]
    assert event["extendedProperties"]["private"]["punctual_appointment_id"] == appt_id
    # Running again writes nothing new (idempotent), and a retried insert would find the same id.
    g.runtime.tick()
    assert len(g.events()) == 1

    # A reschedule after the access token expired: 401 → refresh → patched.
    g.google.expire_access_tokens()
    moved = TUESDAY_10_NY + timedelta(hours=2)
    assert g.api.patch(f"/appointments/{appt_id}", {"start_time": moved.isoformat()}).status_code == 200
    g.runtime.tick()
    [event] = g.events()
    assert event["id"] == event_id and event["start"]["dateTime"].startswith("2026-11-03T12:00:00-05:00")

    assert g.api.post(f"/appointments/{appt_id}/cancel").status_code == 200
    g.runtime.tick()
    assert g.events() == []
    with g.factory() as s:
        assert s.get(GoogleEventLink, appt_id).status == "deleted"


def test_host_events_in_google_block_slots_and_410_resyncs(g):
    g.connect_and_link()
    g.google.host_creates_event(ALICE_EMAIL, summary="Dentist", start=TUESDAY_10_NY, end=TUESDAY_10_NY + timedelta(hours=1))
    g.sync_later()
    with g.factory() as s:
        [block] = s.scalars(select(BusyBlock)).all()
        assert (block.start_at, block.title, block.user_id) == (TUESDAY_10_NY, "Dentist", g.world.alice_id)
    busy = g.api.get(f"/users/{g.world.alice_id}/busy-times?days=7").get_json()["items"]
    assert [(b["title"], b["source"], b["start_time"]) for b in busy] == [("Dentist", "google", TUESDAY_10_NY.isoformat())]
    # Alice is busy then: a booking for her is refused; round robin gives the slot to Bob.
    refused = g.api.post("/appointments", {"calendar_id": g.world.calendar_id, "contact_id": g.world.dana_id,
                                           "assigned_user_id": g.world.alice_id, "start_time": TUESDAY_10_NY.isoformat()})
    assert refused.status_code == 409
    slots = g.api.get(f"/calendars/{g.world.calendar_id}/slots?start={TUESDAY_10_NY.isoformat().replace('+', '%2B')}&days=1")
    first = slots.get_json()["items"][0]
    assert first["start_time"] == TUESDAY_10_NY.isoformat() and first["hosts"] == [g.world.bob_id]

    # The sync token expires: 410 → full resync, the local copy replaced (nothing lost, nothing doubled).
    assert g.google.expire_sync_tokens(ALICE_EMAIL) >= 1
    g.google.host_creates_event(ALICE_EMAIL, summary="Gym", start=TUESDAY_10_NY + timedelta(days=1),
                                end=TUESDAY_10_NY + timedelta(days=1, hours=1))
    g.sync_later()
    with g.factory() as s:
        assert sorted(b.title for b in s.scalars(select(BusyBlock))) == ["Dentist", "Gym"]
    # A deleted host event frees the time again.
    dentist = next(e for e in g.events() if e["summary"] == "Dentist")
    g.google.host_deletes_event(ALICE_EMAIL, dentist["id"])
    g.sync_later()
    with g.factory() as s:
        assert [b.title for b in s.scalars(select(BusyBlock))] == ["Gym"]


def _reminder_doc() -> dict:
    doc = confirmation_doc()
    # Quiet hours keep the confirmation text pending, so a cancel has something to withdraw.
    doc["settings"] = {"time_window": {"days": ["sun"], "start": "09:00", "end": "10:00"}}
    return doc


def test_a_move_in_google_reschedules_and_retimes_the_reminder(g):
    with g.factory() as s, s.begin():
        publish(s, g.world, confirmation_doc(), g.clock.now())
    g.connect_and_link()
    appt_id = g.book()
    g.runtime.tick()
    with g.factory() as s:
        before = s.scalar(select(Enrollment).where(Enrollment.appointment_id == appt_id, Enrollment.state == "waiting"))
        assert before.wake_at == TUESDAY_10_NY - timedelta(days=1)
    new_start = TUESDAY_10_NY + timedelta(days=1)
    g.google.host_moves_event(ALICE_EMAIL, event_id_for(appt_id), new_start, new_start + timedelta(minutes=30))
    g.sync_later()
    with g.factory() as s:
        appt = s.get(Appointment, appt_id)
        assert appt.start_at == new_start and appt.rescheduled
        event = s.scalars(select(DomainEvent).where(DomainEvent.appointment_id == appt_id)
                          .order_by(DomainEvent.id.desc())).first()
        assert event.kind == "appointment.rescheduled" and event.payload["modified_by"] == "user"
        live = s.scalar(select(Enrollment).where(Enrollment.appointment_id == appt_id, Enrollment.state == "waiting"))
        assert live.wake_at == new_start - timedelta(days=1)  # the reminder follows the new time
    # Our write-back (a new meeting link for the new slot) is recognised as ours: no loop, no second move.
    g.sync_later()
    g.sync_later()
    with g.factory() as s:
        kinds = [e.kind for e in s.scalars(select(DomainEvent).where(DomainEvent.appointment_id == appt_id))]
        assert kinds.count("appointment.rescheduled") == 1
    [event] = g.events()
    assert event["start"]["dateTime"].startswith("2026-11-04T10:00:00-05:00")


def test_a_delete_in_google_cancels_and_withdraws_pending_messages(g):
    with g.factory() as s, s.begin():
        publish(s, g.world, _reminder_doc(), g.clock.now())
    g.connect_and_link()
    appt_id = g.book()
    g.runtime.tick()
    with g.factory() as s:
        pending = s.scalars(select(Message).where(Message.appointment_id == appt_id, Message.status == "pending")).all()
        assert pending, "quiet hours should hold the confirmation"
    g.google.host_deletes_event(ALICE_EMAIL, event_id_for(appt_id))
    g.sync_later()
    with g.factory() as s:
        appt = s.get(Appointment, appt_id)
        assert appt.status == "cancelled"
        statuses = {m.status for m in s.scalars(select(Message).where(Message.appointment_id == appt_id,
                                                                      Message.audience == "contact"))}
        assert statuses == {"cancelled"}
        last = s.scalars(select(DomainEvent).where(DomainEvent.appointment_id == appt_id)
                         .order_by(DomainEvent.id.desc())).first()
        assert last.payload["status"] == "cancelled" and last.payload["modified_by"] == "user"


def test_invalid_grant_marks_broken_and_alerts(g):
    g.connect_and_link()
    g.google.invalidate_refresh_tokens()
    g.google.expire_access_tokens()
    g.book()
    g.runtime.tick()
    with g.factory() as s:
        conn = s.scalar(select(GoogleConnection))
        assert conn.status == "broken" and conn.refresh_token_enc is None
        notes = s.scalars(select(Notification).where(Notification.user_id == g.world.alice_id)).all()
        assert any(n.title == "Google Calendar disconnected" for n in notes)
    assert g.api.get(f"/users/{g.world.alice_id}/google").get_json()["status"] == "broken"


def test_disconnect_revokes_at_google(g):
    g.connect_and_link()
    response = g.api.delete(f"/users/{g.world.alice_id}/google")
    assert response.status_code == 200 and response.get_json()["status"] == "not_connected"
    assert g.google.requests_to("/revoke")
    with g.factory() as s:
        assert s.scalar(select(GoogleConnection)) is None


def test_push_notifications_verified_by_channel_token(factory, clock, runtime, app, world, google, gclient):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        g = Setup(factory, clock, runtime, app, world, google, gclient)
        g.use_google(push_url=f"http://127.0.0.1:{server.server_port}/hooks/google")
        g.connect_and_link()  # the first sync opens a channel; Google's "sync" message arrives
        [channel] = list(google.channels.values())
        google.wait_for_pushes(1)
        appt_id = g.book()
        g.runtime.tick()
        # The host moves the event; Google pushes at once; the sync runs without waiting for the period.
        new_start = TUESDAY_10_NY + timedelta(hours=3)
        google.host_moves_event(ALICE_EMAIL, event_id_for(appt_id), new_start, new_start + timedelta(minutes=30))
        assert google.pushes[-1].status == 204  # delivered to /hooks/google and verified
        g.runtime.tick()
        with factory() as s:
            assert s.get(Appointment, appt_id).start_at == new_start
        forged = google.notify(channel.id, token="not-the-token")
        assert forged.status == 401
        # Channels are renewed a day before they expire.
        clock.set(channel.expiration - timedelta(hours=12))
        g.runtime.tick()
        assert len([c for c in google.channels.values()]) >= 2
    finally:
        server.shutdown()
        thread.join()


def test_authorize_url_carries_pkce_and_state(g):
    url = g.api.post(f"/users/{g.world.alice_id}/google/connect").get_json()["authorize_url"]
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["state"][0]) >= 32
    assert query["redirect_uri"] == [g.google.redirect_uri]


def test_free_busy_of_the_primary_calendar_blocks_when_another_is_linked(g):
    g.google.add_calendar(ALICE_EMAIL, "alice-bookings@group.calendar.google.com", "Bookings")
    g.connect_and_link()
    linked = g.api.put(f"/calendars/{g.world.calendar_id}/members/{g.world.alice_id}/google-calendar",
                       {"google_calendar_id": "alice-bookings@group.calendar.google.com"})
    assert linked.status_code == 200
    g.google.host_creates_event(ALICE_EMAIL, summary="Private", start=TUESDAY_10_NY,
                                end=TUESDAY_10_NY + timedelta(minutes=45))
    g.runtime.tick()
    with g.factory() as s:
        blocks = [(b.source, b.start_at, b.end_at) for b in s.scalars(select(BusyBlock))]
    assert ("google_freebusy", TUESDAY_10_NY, TUESDAY_10_NY + timedelta(minutes=45)) in blocks
    appt_id = g.book(TUESDAY_10_NY + timedelta(hours=1))
    g.runtime.tick()
    assert [e["id"] for e in g.google.events_of("alice-bookings@group.calendar.google.com")] == [event_id_for(appt_id)]
