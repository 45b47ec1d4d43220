"""Zoom meeting links end to end: a user connects their own Zoom account through the OAuth callback, each
booking gets its own meeting at the (fake) Zoom, every message carries the right link, and the seeds'
lifecycle rules hold: shared slot, same-time edit, reschedule, cancel, a meeting deleted in Zoom, the
``app_deauthorized`` webhook and disconnecting. All calls go through the real httpx client to
``tests/fakes/zoom_server.py`` over a socket; time is the frozen clock shared with the fake."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from automations.booking import appointments
from automations.store.models import Appointment, Meeting, Notification, OAuthState, ZoomConnection
from automations.store.secrets_box import SecretsBox
from providers.zoom_client import code_challenge_s256
from tests.factories import book
from tests.zoom_fixtures import (  # noqa: F401  (fixtures)
    FALLBACK,
    SECRET_KEY,
    WEBHOOK_URL,
    browser_fixture,
    connect_ok,
    connection,
    fake_zoom_fixture,
    meeting_posts,
    messages_for,
    publish_link_workflow,
    token_grants,
    zoom_app_fixture,
    zoom_provider_fixture,
    zoom_runtime_fixture,
    zoom_settings_fixture,
)


def _book(factory, world, clock, start, user_id, **kw) -> str:
    with factory() as s, s.begin():
        return book(s, world, clock.now(), start=start, assigned_user_id=user_id, **kw).id


def _meeting(factory, appointment_id: str) -> Meeting | None:
    with factory() as s:
        appt = s.get(Appointment, appointment_id)
        return s.get(Meeting, appt.meeting_id) if appt.meeting_id else None


def _v2(fake) -> list:
    return [r for r in fake.requests if r.path.startswith("/v2/")]


# -- connecting ------------------------------------------------------------------------------------------


def test_connect_through_the_oauth_callback_stores_tokens_encrypted(browser, fake_zoom, factory, world):
    host = fake_zoom.add_user(email="alice.zoom@example.com")
    url = browser.authorize_url(world.alice_id)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    with factory() as s:
        pending = s.get(OAuthState, query["state"][0])
        verifier = SecretsBox(SECRET_KEY).decrypt(pending.code_verifier_enc)  # kept encrypted
        assert pending.user_id == world.alice_id and verifier not in pending.code_verifier_enc
        assert code_challenge_s256(verifier) == query["code_challenge"][0]
    response = browser.callback(browser.approve_at_zoom(url, host))
    assert response.status_code == 200
    assert "alice.zoom@example.com is now connected to Alice Admin" in response.get_data(as_text=True)

    (exchange,) = token_grants(fake_zoom, "authorization_code")
    assert exchange.form()["code_verifier"]  # PKCE, on top of the client secret in the Basic header
    assert exchange.headers["authorization"].startswith("Basic ")
    conn = connection(factory, world.alice_id)
    assert (conn.status, conn.zoom_user_id, conn.zoom_account_id, conn.email) == (
        "active", host.id, host.account_id, "alice.zoom@example.com")
    assert "fake-at-" not in conn.access_token_enc and "fake-rt-" not in conn.refresh_token_enc
    box = SecretsBox(SECRET_KEY)
    assert box.decrypt(conn.access_token_enc).startswith("fake-at-")
    assert box.decrypt(conn.refresh_token_enc).startswith("fake-rt-")
    with factory() as s:
        assert s.scalars(select(OAuthState)).all() == []  # the state is spent


def test_state_mismatch_is_refused_before_any_token_request(browser, fake_zoom, factory, world):
    host = fake_zoom.add_user()
    browser.authorize_url(world.alice_id)  # a real state exists, but the callback carries another
    code = fake_zoom.mint_code(host.id)
    response = browser.callback(f"/integrations/zoom/callback?code={code}&state=forged-state")
    assert response.status_code == 400
    assert "not valid" in response.get_data(as_text=True)
    assert fake_zoom.requests_to("/oauth/token") == []
    assert connection(factory, world.alice_id) is None


def test_callback_replay_and_code_reuse_are_refused(browser, fake_zoom, factory, world):
    host = fake_zoom.add_user()
    callback = browser.approve_at_zoom(browser.authorize_url(world.alice_id), host)
    assert browser.callback(callback).status_code == 200
    replay = browser.callback(callback)  # the same state again
    assert replay.status_code == 400 and "already used" in replay.get_data(as_text=True)
    # The same code under a fresh, valid state: Zoom refuses the used code.
    code = parse_qs(urlsplit(callback).query)["code"][0]
    fresh_state = parse_qs(urlsplit(browser.authorize_url(world.alice_id)).query)["state"][0]
    reuse = browser.callback(f"/integrations/zoom/callback?code={code}&state={fresh_state}")
    assert reuse.status_code == 400
    assert "already used or has expired" in reuse.get_data(as_text=True)
    assert len(token_grants(fake_zoom, "authorization_code")) == 2


def test_expired_connect_link_and_declined_consent(browser, fake_zoom, factory, world, clock):
    host = fake_zoom.add_user()
    url = browser.authorize_url(world.alice_id)
    clock.advance(minutes=11)
    late = browser.callback(browser.approve_at_zoom(url, host))
    assert late.status_code == 400 and "expired" in late.get_data(as_text=True)
    state = parse_qs(urlsplit(browser.authorize_url(world.alice_id)).query)["state"][0]
    declined = browser.callback(f"/integrations/zoom/callback?error=access_denied&state={state}")
    assert declined.status_code == 400 and "did not grant access" in declined.get_data(as_text=True)
    with factory() as s:
        assert s.get(OAuthState, state) is None
    assert connection(factory, world.alice_id) is None


def test_one_zoom_account_is_tied_to_one_user_id_whatever_the_email(browser, fake_zoom, factory, world, clock,
                                                                    zoom_runtime):
    shared = fake_zoom.add_user(email="bob@example.com")  # the same email as Bob's Punctual user
    connect_ok(browser, world.alice_id, shared)
    refused = browser.connect(world.bob_id, shared)
    assert refused.status_code == 409
    text = refused.get_data(as_text=True)
    assert "already connected to another user (Alice Admin)" in text
    assert "the tie is to the user ID, not the email address" in text
    assert connection(factory, world.bob_id) is None
    # Alice's connection is untouched and still works.
    assert connection(factory, world.alice_id).status == "active"
    appt = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    zoom_runtime.tick()
    assert _meeting(factory, appt).status == "ready"
    # Reconnecting the same account to the same user is fine.
    again = browser.connect(world.alice_id, shared)
    assert again.status_code == 200 and "reconnected" in again.get_data(as_text=True)


# -- lifecycle -------------------------------------------------------------------------------------------


def test_booking_creates_a_meeting_and_the_confirmation_carries_its_join_url(browser, fake_zoom, factory, world,
                                                                             clock, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    publish_link_workflow(factory, world, clock)
    start = clock.now() + timedelta(days=3)
    appt = _book(factory, world, clock, start, world.alice_id)
    zoom_runtime.tick()

    (zoom_meeting,) = fake_zoom.meetings_of(host.id)
    assert zoom_meeting["start_time"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert zoom_meeting["duration"] == 30 and zoom_meeting["type"] == 2
    assert zoom_meeting["timezone"] == "America/New_York"
    assert zoom_meeting["topic"].startswith("Dana Contact")
    meeting = _meeting(factory, appt)
    assert (meeting.provider, meeting.status, meeting.join_url) == ("zoom", "ready", zoom_meeting["join_url"])
    assert meeting.external_id == str(zoom_meeting["id"])
    (email,) = messages_for(factory, appt)
    assert email.status == "sent" and email.body == f"Join: {zoom_meeting['join_url']}"
    assert connection(factory, world.alice_id).budget_used == 1


def test_same_host_same_slot_shares_one_meeting(browser, fake_zoom, factory, world, clock, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    publish_link_workflow(factory, world, clock)
    start = clock.now() + timedelta(days=2)
    first = _book(factory, world, clock, start, world.alice_id)
    zoom_runtime.tick()
    second = _book(factory, world, clock, start, world.alice_id, contact_id=world.eli_id)
    zoom_runtime.tick()
    assert len(meeting_posts(fake_zoom)) == 1 and len(fake_zoom.meetings_of(host.id)) == 1
    # The second booking's link was checked (a GET, outside the daily budget) before it was sent.
    assert len(fake_zoom.requests_to("/v2/meetings/", "GET")) == 1
    join_url = fake_zoom.meetings_of(host.id)[0]["join_url"]
    assert [m.body for m in messages_for(factory, first) + messages_for(factory, second)] == [f"Join: {join_url}"] * 2
    assert _meeting(factory, first).id == _meeting(factory, second).id
    assert connection(factory, world.alice_id).budget_used == 1


def test_edit_keeping_date_and_time_keeps_the_link_without_calling_zoom(browser, fake_zoom, factory, world,
                                                                        clock, zoom_runtime):
    connect_ok(browser, world.alice_id, fake_zoom.add_user())
    start = clock.now() + timedelta(days=2)
    appt_id = _book(factory, world, clock, start, world.alice_id)
    zoom_runtime.tick()
    before, calls = _meeting(factory, appt_id), len(_v2(fake_zoom))
    with factory() as s, s.begin():
        appt = s.get(Appointment, appt_id)
        appointments.update_details(s, appt, now=clock.now(), modified_by="user", title="Renamed", notes="bring notes")
        assert appointments.reschedule(s, appt, start_at=start, end_at=None, modified_by="user", now=clock.now()) is False
    zoom_runtime.tick()
    after = _meeting(factory, appt_id)
    assert (after.id, after.join_url, after.status) == (before.id, before.join_url, "ready")
    assert len(_v2(fake_zoom)) == calls


def test_reschedule_gets_a_new_link_unless_the_new_slot_already_has_one(browser, fake_zoom, factory, world, clock,
                                                                        zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    t1, t2, t3 = (clock.now() + timedelta(days=d) for d in (2, 3, 4))
    a = _book(factory, world, clock, t1, world.alice_id)
    b = _book(factory, world, clock, t2, world.alice_id, contact_id=world.eli_id)
    zoom_runtime.tick()
    first = _meeting(factory, a)
    with factory() as s, s.begin():
        appointments.reschedule(s, s.get(Appointment, a), start_at=t3, end_at=None, modified_by="user", now=clock.now())
    zoom_runtime.tick()
    moved = _meeting(factory, a)
    assert moved.id != first.id and moved.join_url != first.join_url and moved.status == "ready"
    assert _meeting(factory, a).start_at == t3
    assert int(first.external_id) not in fake_zoom.meetings  # the old one was deleted at Zoom
    # Into B's slot: B's meeting (and link) is reused, A's t3 meeting is deleted.
    with factory() as s, s.begin():
        appointments.reschedule(s, s.get(Appointment, a), start_at=t2, end_at=None, modified_by="user", now=clock.now())
    zoom_runtime.tick()
    assert _meeting(factory, a).id == _meeting(factory, b).id
    assert _meeting(factory, a).join_url == fake_zoom.meetings[int(_meeting(factory, b).external_id)]["join_url"]
    assert len(fake_zoom.meetings_of(host.id)) == 1
    assert len(meeting_posts(fake_zoom)) == 3


def test_cancel_deletes_the_meeting_unless_another_appointment_uses_it(browser, fake_zoom, factory, world, clock,
                                                                       zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    start = clock.now() + timedelta(days=2)
    a = _book(factory, world, clock, start, world.alice_id)
    b = _book(factory, world, clock, start, world.alice_id, contact_id=world.eli_id)
    zoom_runtime.tick()
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, a), "cancelled", modified_by="api", now=clock.now())
    zoom_runtime.tick()
    assert fake_zoom.requests_to("/v2/meetings/", "DELETE") == []
    assert len(fake_zoom.meetings_of(host.id)) == 1
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, b), "cancelled", modified_by="api", now=clock.now())
    zoom_runtime.tick()
    assert len(fake_zoom.requests_to("/v2/meetings/", "DELETE")) == 1
    assert fake_zoom.meetings_of(host.id) == []
    with factory() as s:
        assert s.scalars(select(Meeting)).one().status == "deleted"


def test_a_meeting_deleted_in_zoom_is_recreated_before_its_link_is_sent_again(browser, fake_zoom, factory, world,
                                                                               clock, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    publish_link_workflow(factory, world, clock)
    start = clock.now() + timedelta(days=2)
    a = _book(factory, world, clock, start, world.alice_id)
    zoom_runtime.tick()
    old = _meeting(factory, a)
    fake_zoom.delete_meeting_externally(old.external_id)  # the host deleted it in Zoom's UI
    b = _book(factory, world, clock, start, world.alice_id, contact_id=world.eli_id)
    zoom_runtime.tick()
    (recreated,) = fake_zoom.meetings_of(host.id)
    meeting = _meeting(factory, b)
    assert meeting.id == old.id == _meeting(factory, a).id  # still the one canonical record
    assert meeting.external_id == str(recreated["id"]) != old.external_id
    assert meeting.join_url == recreated["join_url"] != old.join_url
    (email,) = messages_for(factory, b)
    assert email.body == f"Join: {recreated['join_url']}"  # never the dead link
    (get,) = fake_zoom.requests_to("/v2/meetings/", "GET")
    assert get.path == f"/v2/meetings/{old.external_id}"


def test_punctual_never_imports_meetings_made_in_zoom(browser, fake_zoom, factory, world, clock, zoom_runtime,
                                                      zoom_provider):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    a = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    zoom_runtime.tick()
    expected = _meeting(factory, a).id
    with factory() as s:
        assert s.scalars(select(Meeting)).one().id == expected
    listed = [r for r in fake_zoom.requests if r.method == "GET" and r.path.endswith("/meetings")]
    assert listed == []  # no list calls: only meetings Punctual created are ever touched


def test_a_calendar_with_no_host_uses_its_static_location(browser, fake_zoom, factory, world, clock, zoom_runtime):
    publish_link_workflow(factory, world, clock)
    with factory() as s, s.begin():
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=1),
                    calendar_id=world.static_calendar_id).id
    zoom_runtime.tick()
    assert _meeting(factory, appt) is None and _v2(fake_zoom) == []
    assert messages_for(factory, appt)[0].body == "Join: https://meet.example.com/static-room"


# -- rendering when the link cannot be had ---------------------------------------------------------------


def test_host_without_a_zoom_connection_fails_the_link_and_messages_fall_back(browser, fake_zoom, factory, world,
                                                                             clock, zoom_runtime):
    publish_link_workflow(factory, world, clock)
    appt = _book(factory, world, clock, clock.now() + timedelta(days=2), world.bob_id)
    zoom_runtime.tick()
    meeting = _meeting(factory, appt)
    assert meeting.status == "failed" and "not connected a Zoom account" in meeting.error
    (email,) = messages_for(factory, appt)
    assert email.status == "sent" and email.body == f"Join: {FALLBACK}"
    assert _v2(fake_zoom) == []


# -- webhooks and disconnecting --------------------------------------------------------------------------


def test_app_deauthorized_webhook_is_verified_and_removes_the_tokens(browser, fake_zoom, factory, world, clock,
                                                                     zoom_app, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    with httpx.Client(transport=httpx.WSGITransport(app=zoom_app), base_url="http://punctual.test") as inproc:
        plain, validation = fake_zoom.send_url_validation(WEBHOOK_URL, client=inproc)
        assert validation.status_code == 200
        assert validation.json() == {"plainToken": plain, "encryptedToken": fake_zoom.expected_encrypted_token(plain)}
        unsigned = inproc.post("/hooks/zoom", json={"event": "app_deauthorized", "payload": {}})
        assert unsigned.status_code == 401
        tampered = fake_zoom.send_app_deauthorized(WEBHOOK_URL, host.id, revoke=False, tamper=True, client=inproc)
        assert tampered.status_code == 401 and tampered.json()["error"]["code"] == "invalid_zoom_signature"
        assert connection(factory, world.alice_id) is not None
        first = fake_zoom.send_app_deauthorized(WEBHOOK_URL, host.id, client=inproc)
        assert first.status_code == 200 and first.json()["removed"] is True
        again = fake_zoom.send_app_deauthorized(WEBHOOK_URL, host.id, client=inproc)  # Zoom retries
        assert again.status_code == 200 and again.json()["removed"] is False
        other = fake_zoom.send_webhook(WEBHOOK_URL, "meeting.started", {"object": {"id": 1}}, client=inproc)
        assert other.status_code == 204
    assert connection(factory, world.alice_id) is None
    with factory() as s:
        (note,) = s.scalars(select(Notification).where(Notification.user_id == world.alice_id)).all()
        assert note.title == "Zoom was disconnected"
    # New bookings no longer reach Zoom: the fallback applies.
    publish_link_workflow(factory, world, clock)
    appt = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    zoom_runtime.tick()
    assert _meeting(factory, appt).status == "failed"
    assert messages_for(factory, appt)[0].body == f"Join: {FALLBACK}"


def test_disconnect_with_delete_future_meetings(browser, fake_zoom, factory, world, clock, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    past = _book(factory, world, clock, clock.now() + timedelta(hours=2), world.alice_id)
    a = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    b = _book(factory, world, clock, clock.now() + timedelta(days=3), world.alice_id)
    zoom_runtime.tick()
    clock.advance(hours=3)  # the first appointment is over
    assert len(fake_zoom.meetings_of(host.id)) == 3
    response = browser.api("DELETE", f"/users/{world.alice_id}/zoom", json={"delete_future_meetings": True})
    assert response.status_code == 200
    assert response.get_json() | {"message": ""} == {"user_id": world.alice_id, "status": "disconnecting",
                                                     "meetings_to_delete": 2, "message": ""}
    assert connection(factory, world.alice_id).status == "disconnecting"
    zoom_runtime.tick()
    remaining = fake_zoom.meetings_of(host.id)
    assert [m["id"] for m in remaining] == [int(_meeting(factory, past).external_id)]  # only the past one stays
    assert connection(factory, world.alice_id) is None  # tokens revoked and removed once deletions were done
    assert fake_zoom.revoked
    api_appt = browser.api("GET", f"/appointments/{a}").get_json()
    assert api_appt["meeting"]["state"] == "failed" and api_appt["meeting_location"] == FALLBACK
    assert _meeting(factory, b).status == "deleted"
    user = browser.api("GET", f"/users/{world.alice_id}").get_json()
    assert user["zoom"]["status"] == "not_connected"


def test_disconnect_keeping_meetings_revokes_at_once(browser, fake_zoom, factory, world, clock, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    a = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    zoom_runtime.tick()
    token = SecretsBox(SECRET_KEY).decrypt(connection(factory, world.alice_id).access_token_enc)
    response = browser.api("DELETE", f"/users/{world.alice_id}/zoom")
    assert response.status_code == 200 and response.get_json()["status"] == "disconnected"
    assert connection(factory, world.alice_id) is None
    assert fake_zoom.revoked == [token]
    (kept,) = fake_zoom.meetings_of(host.id)  # meetings already in Zoom stay, and so do their links
    assert _meeting(factory, a).join_url == kept["join_url"] and _meeting(factory, a).status == "ready"
    # The Zoom account is free again: another user may connect it now.
    connect_ok(browser, world.bob_id, host)
    assert connection(factory, world.bob_id).zoom_user_id == host.id
    assert browser.api("DELETE", f"/users/{world.alice_id}/zoom").get_json()["status"] == "not_connected"


def test_cancel_after_deauthorization_does_not_call_zoom(browser, fake_zoom, factory, world, clock, zoom_runtime,
                                                         zoom_app):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    a = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    zoom_runtime.tick()
    with httpx.Client(transport=httpx.WSGITransport(app=zoom_app), base_url="http://punctual.test") as inproc:
        assert fake_zoom.send_app_deauthorized(WEBHOOK_URL, host.id, client=inproc).status_code == 200
    calls = len(_v2(fake_zoom))
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, a), "cancelled", modified_by="api", now=clock.now())
    zoom_runtime.tick()
    assert len(_v2(fake_zoom)) == calls
    with factory() as s:
        assert s.scalars(select(Meeting)).one().status == "deleted"
        assert s.scalars(select(ZoomConnection)).all() == []


def test_meetings_of_another_provider_are_adopted_or_dropped_never_sent_to_zoom(browser, fake_zoom, factory, world,
                                                                                clock, zoom_runtime):
    """Meetings recorded before Zoom was configured (the sandbox): a pending one is made by Zoom; a sandbox
    meeting's id is never used in a Zoom call (it could name someone else's meeting)."""
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    pending = _book(factory, world, clock, clock.now() + timedelta(days=1), world.alice_id)
    made = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    with factory() as s, s.begin():
        for appt_id in (pending, made):
            s.get(Meeting, s.get(Appointment, appt_id).meeting_id).provider = "sandbox"
        old = s.get(Meeting, s.get(Appointment, made).meeting_id)
        old.status, old.external_id, old.join_url = "ready", "85746065432", "https://sandbox.punctual.invalid/zoom/j/1"
    zoom_runtime.tick()
    adopted = _meeting(factory, pending)
    assert (adopted.provider, adopted.status) == ("zoom", "ready") and len(meeting_posts(fake_zoom)) == 1
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, made), "cancelled", modified_by="api", now=clock.now())
    zoom_runtime.tick()
    assert fake_zoom.requests_to("/v2/meetings/", "DELETE") == []
    with factory() as s:
        assert s.get(Meeting, old.id).status == "deleted"
