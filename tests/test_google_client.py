"""GoogleCalendarClient against the local fake Google (real httpx over a socket). Contract: EXTERNAL_APIS.md §4.

Time is a :class:`FrozenClock` shared by the client and the fake; nothing sleeps: asynchronous pushes are
awaited with bounded condition waits."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from automations.clock import FrozenClock
from automations.errors import PermanentProviderError, RetryableProviderError
from providers.google_calendar import (
    PROP_APPOINTMENT_ID,
    PROP_FINGERPRINT,
    PROP_VERSION,
    SCOPE_EVENTS,
    SCOPE_READONLY,
    EventDraft,
    GoogleAuthError,
    GoogleCalendarClient,
    GoogleConnectionBroken,
    GoogleGone,
    GoogleInsufficientScope,
    GoogleInvalidGrant,
    GoogleNotFound,
    GooglePreconditionFailed,
    GooglePushRejected,
    GoogleRateLimited,
    GoogleRequestRejected,
    GoogleSyncTokenExpired,
    GoogleTokens,
    GoogleUnavailable,
    code_challenge_s256,
    event_id_for,
    host_modified,
    is_own_write,
    is_valid_event_id,
    make_code_verifier,
    new_channel_token,
    parse_push_headers,
    verify_push,
)
from tests.fakes.google_server import FakeGoogle, parse_redirect
from tests.fakes.slack_server import WebhookReceiver

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOST = "dr.lee@example.com"
NY = "America/New_York"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def google(clock: FrozenClock) -> Iterator[FakeGoogle]:
    with FakeGoogle(clock=clock) as fake:
        fake.add_account(HOST, time_zone=NY)
        yield fake
    assert not fake.errors, fake.errors  # the fake itself never crashed


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def client(google: FakeGoogle, http: httpx.Client, clock: FrozenClock) -> GoogleCalendarClient:
    return GoogleCalendarClient(
        client_id=google.client_id,
        client_secret=google.client_secret,
        redirect_uri=google.redirect_uri,
        http=http,
        oauth_base=google.oauth_base,
        token_base=google.token_base,
        api_base=google.api_base,
        clock=clock,
    )


@pytest.fixture
def tokens(client: GoogleCalendarClient, google: FakeGoogle, clock: FrozenClock) -> GoogleTokens:
    verifier = make_code_verifier()
    code = google.mint_code(HOST, code_challenge=code_challenge_s256(verifier))
    return client.exchange_code(code, verifier, now=clock.now())


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


def draft(appointment_id: str = "apt_123", **kw) -> EventDraft:
    base = {
        "appointment_id": appointment_id,
        "start": datetime(2026, 3, 10, 15, 0, tzinfo=UTC),
        "end": datetime(2026, 3, 10, 15, 30, tzinfo=UTC),
        "summary": "Dental cleaning – Ana Souza",
        "timezone": NY,
        "description": "Appointment apt_123",
        "location": "Room 4",
    }
    base.update(kw)
    return EventDraft(**base)


# ----------------------------------------------------------------------------------------------- OAuth


def test_authorization_url_asks_offline_consent_with_pkce_and_round_trips(
    client: GoogleCalendarClient, google: FakeGoogle, http: httpx.Client, clock: FrozenClock
) -> None:
    auth = client.start_authorization(login_hint=HOST)
    parts = urlsplit(auth.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{google.oauth_base}/o/oauth2/v2/auth"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q["client_id"] == google.client_id and q["redirect_uri"] == google.redirect_uri
    assert q["response_type"] == "code" and q["access_type"] == "offline" and q["prompt"] == "consent"
    assert q["include_granted_scopes"] == "true" and q["login_hint"] == HOST
    assert set(q["scope"].split()) == {SCOPE_EVENTS, SCOPE_READONLY}
    assert q["state"] == auth.state and len(auth.state) >= 32
    assert q["code_challenge_method"] == "S256"
    assert q["code_challenge"] == code_challenge_s256(auth.code_verifier) != auth.code_verifier

    # The fake's consent page redirects back with the code and our state, like Google.
    redirect = http.get(auth.url, follow_redirects=False)
    assert redirect.status_code == 302
    back = parse_redirect(redirect.headers["Location"])
    assert back["state"] == auth.state
    tokens = client.exchange_code(back["code"], auth.code_verifier, now=clock.now())
    assert tokens.access_token.startswith("ya29.") and tokens.refresh_token
    assert tokens.expires_at == START + timedelta(seconds=3599)
    assert tokens.missing_scopes() == frozenset()
    assert not tokens.expires_soon(START) and tokens.expires_soon(START + timedelta(seconds=3540))
    assert "ya29" not in repr(tokens)  # secrets stay out of logs
    # Client credentials went in the form body, not in a Basic header (§4.1).
    token_request = google.requests_to("/token")[-1]
    assert token_request.form_value("client_secret") == google.client_secret
    assert token_request.form_value("code_verifier") == auth.code_verifier
    assert token_request.auth is None


def test_pkce_challenge_is_rfc7636_s256() -> None:
    assert (
        code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


def test_exchange_with_wrong_verifier_or_reused_code_is_invalid_grant(
    client: GoogleCalendarClient, google: FakeGoogle
) -> None:
    verifier = make_code_verifier()
    code = google.mint_code(HOST, code_challenge=code_challenge_s256(verifier))
    with pytest.raises(GoogleInvalidGrant) as bad:
        client.exchange_code(code, make_code_verifier())
    assert bad.value.http_status == 400 and bad.value.reason == "invalid_grant"
    with pytest.raises(GoogleInvalidGrant):  # codes are single-use even after a failed attempt
        client.exchange_code(code, verifier)


def test_wrong_client_secret_is_a_permanent_rejection(
    google: FakeGoogle, http: httpx.Client, clock: FrozenClock
) -> None:
    wrong = GoogleCalendarClient(
        client_id=google.client_id,
        client_secret="not-the-secret",
        redirect_uri=google.redirect_uri,
        http=http,
        token_base=google.token_base,
        clock=clock,
    )
    verifier = make_code_verifier()
    with pytest.raises(GoogleRequestRejected) as err:
        wrong.exchange_code(google.mint_code(HOST, code_challenge=code_challenge_s256(verifier)), verifier)
    assert err.value.reason == "invalid_client" and err.value.http_status == 401
    assert not isinstance(err.value, GoogleConnectionBroken)


def test_refresh_keeps_the_refresh_token_google_does_not_rotate(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens, clock: FrozenClock
) -> None:
    clock.advance(minutes=59)
    fresh = client.refresh(tokens.refresh_token or "", now=clock.now())
    assert fresh.refresh_token == tokens.refresh_token and not fresh.refresh_token_rotated
    assert fresh.access_token != tokens.access_token
    assert fresh.expires_at == clock.now() + timedelta(seconds=3599)
    sent = google.requests_to("/token")[-1]
    assert sent.form_value("grant_type") == "refresh_token"
    assert sent.form_value("refresh_token") == tokens.refresh_token
    # When Google does send a new refresh token, it replaces the old one.
    google.rotate_refresh_tokens = True
    rotated = client.refresh(fresh.refresh_token or "", now=clock.now())
    assert rotated.refresh_token_rotated and rotated.refresh_token != tokens.refresh_token
    assert client.refresh(rotated.refresh_token or "").access_token


def test_dead_refresh_token_is_invalid_grant_and_marks_the_connection_broken(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    google.invalidate_refresh_tokens(HOST)
    with pytest.raises(GoogleInvalidGrant) as err:
        client.refresh(tokens.refresh_token or "")
    assert isinstance(err.value, GoogleConnectionBroken) and isinstance(err.value, PermanentProviderError)
    assert err.value.retryable is False and err.value.provider_code == "invalid_grant"
    assert "expired or revoked" in err.value.message


def test_expired_access_token_is_auth_error_and_refresh_recovers(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens, clock: FrozenClock
) -> None:
    clock.advance(seconds=3600)
    with pytest.raises(GoogleAuthError) as err:
        client.list_calendars(tokens.access_token)
    assert err.value.http_status == 401 and err.value.reason == "authError" and not err.value.retryable
    fresh = client.refresh(tokens.refresh_token or "", now=clock.now())
    assert [c.id for c in client.list_calendars(fresh.access_token)] == [HOST]
    google.expire_access_tokens(HOST)  # the switch works without moving the clock too
    with pytest.raises(GoogleAuthError):
        client.list_calendars(fresh.access_token)


def test_revoke_kills_the_grant_and_is_idempotent(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    assert client.revoke(tokens.refresh_token or "") is True
    assert google.requests_to("/revoke")[-1].query["token"] == [tokens.refresh_token]
    with pytest.raises(GoogleAuthError):
        client.list_calendars(tokens.access_token)
    with pytest.raises(GoogleInvalidGrant):
        client.refresh(tokens.refresh_token or "")
    assert client.revoke(tokens.refresh_token or "") is False  # already revoked: still success


def test_unticked_scope_is_reported_and_enforced(
    client: GoogleCalendarClient, google: FakeGoogle, clock: FrozenClock
) -> None:
    google.grant_only({SCOPE_EVENTS})
    verifier = make_code_verifier()
    code = google.mint_code(HOST, code_challenge=code_challenge_s256(verifier))
    tokens = client.exchange_code(code, verifier, now=clock.now())
    assert tokens.missing_scopes() == frozenset({SCOPE_READONLY})
    with pytest.raises(GoogleInsufficientScope) as err:
        client.free_busy(tokens.access_token, ["primary"], START, START + timedelta(hours=1))
    assert isinstance(err.value, GoogleConnectionBroken) and err.value.http_status == 403
    # What the granted scope allows still works.
    assert client.insert_event(tokens.access_token, "primary", draft()).created


# -------------------------------------------------------------------------------------------- calendars


def test_list_calendars_follows_pages_and_filters_by_role(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    google.add_calendar(HOST, "team@group.calendar.google.com", "Team", access_role="writer")
    google.add_calendar(HOST, "en.usa#holiday@group.v.calendar.google.com", "Holidays", access_role="reader")
    for n in range(260):  # more than one 250-entry page
        google.add_calendar(HOST, f"room{n}@resource.calendar.google.com", f"Room {n}", access_role="reader")
    calendars = client.list_calendars(tokens.access_token)
    assert len(calendars) == 263 and len(google.requests_to("/calendar/v3/users/me/calendarList")) == 2
    primary = calendars[0]
    assert primary.id == HOST and primary.primary and primary.writable and primary.time_zone == NY
    writable = client.list_calendars(tokens.access_token, min_access_role="writer")
    assert [c.id for c in writable] == [HOST, "team@group.calendar.google.com"]


# --------------------------------------------------------------------------------------------- event ids


def test_event_id_for_is_deterministic_and_in_googles_alphabet() -> None:
    eid = event_id_for("apt_123")
    assert eid == hashlib.sha256(b"apt_123:v1").hexdigest()[:32]  # the contract's example (§4.4 A)
    assert eid == event_id_for("apt_123") and is_valid_event_id(eid)
    assert eid != event_id_for("apt_124") and eid != event_id_for("apt_123", generation=2)
    for odd in ("APT-1", "ümlaut", "a", "x" * 500, "apt_1:with/slash#and spaces"):
        assert is_valid_event_id(event_id_for(odd))
    assert (
        not is_valid_event_id("apt_123") and not is_valid_event_id("abcd") and not is_valid_event_id("wxyz0")
    )
    with pytest.raises(ValueError):
        event_id_for("")


# ------------------------------------------------------------------------------------------------ events


def test_insert_is_idempotent_with_the_derived_id(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    first = client.insert_event(tokens.access_token, "primary", draft())
    assert first.created and first.event.id == event_id_for("apt_123")
    again = client.insert_event(tokens.access_token, "primary", draft())
    assert not again.created and again.event.id == first.event.id and again.event.etag == first.event.etag
    assert len(google.events_of(HOST)) == 1
    posts = google.requests_to("/calendar/v3/calendars/primary/events", "POST")
    assert len(posts) == 2 and posts[0].query["sendUpdates"] == ["none"]
    assert google.requests_to(f"/calendar/v3/calendars/primary/events/{first.event.id}", "GET")


def test_inserted_event_is_marked_as_ours_and_rendered_in_its_zone(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    event = client.insert_event(
        tokens.access_token, "primary", draft(version=3, reminder_minutes=(30,))
    ).event
    stored = google.event(HOST, event.id)
    assert stored is not None
    assert stored["start"] == {"dateTime": "2026-03-10T11:00:00-04:00", "timeZone": NY}  # DST began 8 March
    assert stored["reminders"] == {"useDefault": False, "overrides": [{"method": "popup", "minutes": 30}]}
    private = stored["extendedProperties"]["private"]
    assert private[PROP_APPOINTMENT_ID] == "apt_123" and private[PROP_VERSION] == "3"
    assert len(private[PROP_FINGERPRINT]) == 16
    assert event.appointment_id == "apt_123" and event.punctual_version == 3
    assert event.start == datetime(2026, 3, 10, 15, 0, tzinfo=UTC) and event.timezone == NY
    assert host_modified(event) is False and is_own_write(event, event.etag)
    # The host's own events are not ours.
    theirs = google.host_creates_event(HOST, summary="Lunch", start=START, end=START + timedelta(hours=1))
    assert client.get_event(tokens.access_token, HOST, theirs["id"]).appointment_id is None


def test_group_calendar_ids_are_path_encoded(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    cid = "c_team#x@group.calendar.google.com"
    google.add_calendar(HOST, cid, "Team")
    event = client.insert_event(tokens.access_token, cid, draft()).event
    assert [e["id"] for e in google.events_of(cid)] == [event.id]
    assert "%23" in google.requests_to("/calendar/v3/calendars/c_team", "POST")[0].target


def test_patch_updates_fields_and_honours_if_match(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    created = client.insert_event(tokens.access_token, "primary", draft()).event
    later = datetime(2026, 3, 11, 14, 0, tzinfo=UTC)
    moved = client.patch_event(
        tokens.access_token,
        "primary",
        created.id,
        draft(start=later, end=later + timedelta(minutes=45), version=2),
        if_match=created.etag,
    )
    assert moved.start == later and moved.end == later + timedelta(minutes=45)
    assert moved.punctual_version == 2 and moved.etag != created.etag and moved.sequence == 1
    assert host_modified(moved) is False  # our own write
    with pytest.raises(GooglePreconditionFailed) as err:  # the etag we read is stale now
        client.patch_event(tokens.access_token, "primary", created.id, draft(), if_match=created.etag)
    assert err.value.http_status == 412 and not err.value.retryable
    assert google.event(HOST, created.id)["start"]["dateTime"] == "2026-03-11T10:00:00-04:00"


def test_host_edits_are_told_apart_from_our_writes(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    ours = client.insert_event(tokens.access_token, "primary", draft()).event
    google.host_edits_event(HOST, ours.id, {"colorId": "5"}, notify=False)  # not a field we manage
    recoloured = client.get_event(tokens.access_token, "primary", ours.id)
    assert host_modified(recoloured) is False and not is_own_write(recoloured, ours.etag)
    google.host_moves_event(HOST, ours.id, START, START + timedelta(minutes=30), notify=False)
    moved = client.get_event(tokens.access_token, "primary", ours.id)
    assert host_modified(moved) is True and moved.start == START
    assert moved.appointment_id == "apt_123"  # private properties survive the host's edit


def test_delete_is_idempotent(client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens) -> None:
    event = client.insert_event(tokens.access_token, "primary", draft()).event
    assert client.delete_event(tokens.access_token, "primary", event.id) is True
    assert google.events_of(HOST) == []
    assert client.delete_event(tokens.access_token, "primary", event.id) is False  # 410 deleted
    assert client.delete_event(tokens.access_token, "primary", event_id_for("never")) is False  # 404
    with pytest.raises(GoogleGone):
        client.patch_event(tokens.access_token, "primary", event.id, draft())
    with pytest.raises(GoogleNotFound) as err:
        client.get_event(tokens.access_token, "primary", event_id_for("never"))
    assert err.value.reason == "notFound"


def test_insert_after_the_host_deleted_it_returns_the_cancelled_event(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    event = client.insert_event(tokens.access_token, "primary", draft()).event
    google.host_deletes_event(HOST, event.id, notify=False)
    again = client.insert_event(tokens.access_token, "primary", draft())
    assert not again.created and again.event.cancelled  # the id stays reserved
    recreated = client.insert_event(
        tokens.access_token, "primary", draft(), event_id=event_id_for("apt_123", generation=2)
    )
    assert recreated.created and recreated.event.appointment_id == "apt_123"
    assert len(google.events_of(HOST)) == 1


def test_google_validation_errors_are_permanent(client: GoogleCalendarClient, tokens: GoogleTokens) -> None:
    backwards = draft(start=datetime(2026, 3, 10, 16, 0, tzinfo=UTC))  # ends before it starts
    with pytest.raises(GoogleRequestRejected) as err:
        client.insert_event(tokens.access_token, "primary", backwards)
    assert err.value.http_status == 400 and err.value.reason == "timeRangeEmpty"
    assert isinstance(err.value, PermanentProviderError) and not err.value.retryable
    with pytest.raises(GoogleNotFound):
        client.insert_event(tokens.access_token, "nobody@example.com", draft())


# ------------------------------------------------------------------------------------------------- sync


def test_full_then_incremental_sync_with_paging(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    ids = [client.insert_event(tokens.access_token, "primary", draft(f"apt_{n}")).event.id for n in range(5)]
    full = client.sync_events(tokens.access_token, "primary", None, max_results=2)
    assert full.full and full.pages == 3 and sorted(e.id for e in full.events) == sorted(ids)
    lists = google.requests_to("/calendar/v3/calendars/primary/events", "GET")
    assert [("pageToken" in r.query, "syncToken" in r.query) for r in lists] == [
        (False, False),
        (True, False),
        (True, False),
    ]

    # The host moves one, deletes one and adds one of their own "in Google".
    google.host_moves_event(HOST, ids[0], START, START + timedelta(hours=1), notify=False)
    google.host_deletes_event(HOST, ids[1], notify=False)
    block = google.host_creates_event(
        HOST, summary="Gym", start=START, end=START + timedelta(hours=2), notify=False
    )
    changes = client.sync_events(tokens.access_token, "primary", full.next_sync_token, max_results=2)
    assert not changes.full and changes.pages == 2
    assert [e.id for e in changes.events] == [ids[0], ids[1], block["id"]]
    assert [e.id for e in changes.deleted] == [ids[1]] and changes.deleted[0].summary == ""
    assert {e.id for e in changes.changed} == {ids[0], block["id"]}
    assert host_modified(next(e for e in changes.changed if e.id == ids[0])) is True
    sent = google.requests_to("/calendar/v3/calendars/primary/events", "GET")[-1]
    assert "timeMin" not in sent.query and sent.query["syncToken"] == [full.next_sync_token]

    # Nothing changed since: an empty result with a new token.
    quiet = client.sync_events(tokens.access_token, "primary", changes.next_sync_token)
    assert quiet.events == () and quiet.next_sync_token != changes.next_sync_token


def test_single_page_carries_sync_token_only_on_the_last_page(
    client: GoogleCalendarClient, tokens: GoogleTokens
) -> None:
    for n in range(3):
        client.insert_event(tokens.access_token, "primary", draft(f"apt_{n}"))
    first = client.list_events(tokens.access_token, "primary", max_results=2)
    assert len(first.items) == 2 and first.next_page_token and first.next_sync_token is None
    last = client.list_events(tokens.access_token, "primary", max_results=2, page_token=first.next_page_token)
    assert len(last.items) == 1 and last.next_page_token is None and last.next_sync_token
    filtered = client.list_events(
        tokens.access_token, "primary", private_filter={PROP_APPOINTMENT_ID: "apt_2"}
    )
    assert [e.appointment_id for e in filtered.items] == ["apt_2"]
    with pytest.raises(ValueError):  # Google forbids filters with a sync token (§4.7)
        client.list_events(tokens.access_token, "primary", sync_token="x", time_min=START)


def test_expired_sync_token_raises_and_a_full_resync_recovers(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    client.insert_event(tokens.access_token, "primary", draft())
    full = client.sync_events(
        tokens.access_token, "primary", None, full_sync_time_min=START - timedelta(days=30)
    )
    assert google.requests_to("/calendar/v3/calendars/primary/events", "GET")[0].query["timeMin"] == [
        "2026-01-30T12:00:00Z"
    ]
    assert google.expire_sync_tokens(HOST) == 1
    with pytest.raises(GoogleSyncTokenExpired) as err:
        client.sync_events(tokens.access_token, "primary", full.next_sync_token)
    assert err.value.http_status == 410 and err.value.reason == "fullSyncRequired"
    again = client.sync_events(tokens.access_token, "primary", None)
    assert again.full and len(again.events) == 1 and again.next_sync_token != full.next_sync_token


# --------------------------------------------------------------------------------------------- freeBusy


def test_free_busy_merges_clips_and_reports_per_calendar_errors(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    day = datetime(2026, 3, 10, tzinfo=UTC)
    google.host_creates_event(
        HOST, summary="A", start=day + timedelta(hours=14), end=day + timedelta(hours=15)
    )
    google.host_creates_event(
        HOST, summary="B", start=day + timedelta(hours=14, minutes=30), end=day + timedelta(hours=16)
    )
    google.host_creates_event(
        HOST,
        summary="FYI",
        start=day + timedelta(hours=9),
        end=day + timedelta(hours=10),
        transparency="transparent",
    )
    google.host_creates_event(
        HOST, summary="Late", start=day + timedelta(hours=23), end=day + timedelta(hours=25)
    )
    gone = google.host_creates_event(
        HOST, summary="X", start=day + timedelta(hours=5), end=day + timedelta(hours=6)
    )
    google.host_deletes_event(HOST, gone["id"], notify=False)

    result = client.free_busy(
        tokens.access_token, ["primary", "ghost@example.com"], day, day + timedelta(days=1)
    )
    busy = result["primary"]
    assert busy.ok
    assert [(b.start, b.end) for b in busy.busy] == [
        (day + timedelta(hours=14), day + timedelta(hours=16)),  # A and B merged
        (day + timedelta(hours=23), day + timedelta(days=1)),  # clipped at timeMax
    ]
    assert not result["ghost@example.com"].ok and result["ghost@example.com"].errors == ("notFound",)
    with pytest.raises(GoogleRequestRejected) as err:
        client.free_busy(tokens.access_token, ["primary"], day, day)
    assert err.value.reason == "timeRangeEmpty"


# ------------------------------------------------------------------------------------------ watch/push


def test_watch_push_and_verification(
    client: GoogleCalendarClient,
    google: FakeGoogle,
    tokens: GoogleTokens,
    receiver: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    secret = new_channel_token()
    channel = client.watch_events(
        tokens.access_token, "primary", address=receiver.url("/google/push"), token=secret, ttl_seconds=3600
    )
    assert channel.expiration == clock.now() + timedelta(hours=1) and channel.resource_id and channel.id
    assert secret not in repr(channel)
    # Google's first message on a channel is "sync", number 1.
    sync_request = receiver.wait_for_requests(1)[0]
    assert sync_request.method == "POST" and sync_request.body == b"" and sync_request.path == "/google/push"
    note = verify_push(
        sync_request.headers,
        channel_id=channel.id,
        channel_token=channel.token,
        resource_id=channel.resource_id,
    )
    assert note.is_sync and note.message_number == 1

    # The host moves an event in Google: "exists", which the stored channel verifies.
    event = client.insert_event(tokens.access_token, "primary", draft()).event
    google.host_moves_event(HOST, event.id, START, START + timedelta(minutes=30))
    exists = receiver.wait_for_requests(2)[1]
    note = verify_push(exists.headers, channel_id=channel.id, channel_token=channel.token)
    assert note.resource_state == "exists" and note.message_number == 2
    assert note.resource_id == channel.resource_id and note.channel_expiration

    # A forged or mismatched notification is refused.
    forged = google.notify(channel.id, token="guessed")
    assert forged.status == 200  # the receiver got it...
    with pytest.raises(GooglePushRejected) as bad:  # ...and verification refuses it
        verify_push(
            receiver.wait_for_requests(3)[2].headers, channel_id=channel.id, channel_token=channel.token
        )
    assert bad.value.why == "channel token mismatch" and bad.value.status_code == 401
    with pytest.raises(GooglePushRejected):
        verify_push(exists.headers, channel_id="another-channel", channel_token=channel.token)
    with pytest.raises(GooglePushRejected):
        verify_push(exists.headers, channel_id=channel.id, channel_token=channel.token, resource_id="other")
    with pytest.raises(GooglePushRejected):
        verify_push(exists.headers, channel_id=channel.id, channel_token="")
    with pytest.raises(GooglePushRejected):
        parse_push_headers({"X-Goog-Channel-ID": channel.id})


def test_stop_channel_and_expiry_end_notifications(
    client: GoogleCalendarClient,
    google: FakeGoogle,
    tokens: GoogleTokens,
    receiver: WebhookReceiver,
    clock: FrozenClock,
) -> None:
    short = client.watch_events(
        tokens.access_token, "primary", address=receiver.url(), token="t1", ttl_seconds=60
    )
    kept = client.watch_events(tokens.access_token, "primary", address=receiver.url(), token="t2")
    google.wait_for_pushes(2)  # both sync messages
    assert client.stop_channel(tokens.access_token, kept.id, kept.resource_id) is True
    assert client.stop_channel(tokens.access_token, kept.id, kept.resource_id) is False  # already stopped
    assert [d.channel_id for d in google.notify_calendar(HOST)] == [short.id]
    clock.advance(seconds=61)  # the short channel expired: Google does not renew it
    assert google.notify_calendar(HOST) == []


def test_watch_requires_https_outside_localhost(client: GoogleCalendarClient, tokens: GoogleTokens) -> None:
    with pytest.raises(GoogleRequestRejected) as err:
        client.watch_events(tokens.access_token, "primary", address="http://app.example.com/push", token="t")
    assert err.value.reason == "push.webhookUrlNotHttps"


# ---------------------------------------------------------------------------------------------- errors


def test_429_is_retryable_with_retry_after(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens, clock: FrozenClock
) -> None:
    google.fail_next(429, retry_after=7)
    with pytest.raises(GoogleRateLimited) as err:
        client.insert_event(tokens.access_token, "primary", draft())
    assert isinstance(err.value, RetryableProviderError) and err.value.retryable
    assert err.value.retry_after == 7.0 and err.value.retry_at == clock.now() + timedelta(seconds=7)
    assert err.value.reason == "rateLimitExceeded"
    assert client.insert_event(tokens.access_token, "primary", draft()).created  # the retry succeeds

    google.fail_next(403, "userRateLimitExceeded")  # 403 that means "slow down", without Retry-After
    with pytest.raises(GoogleRateLimited) as err:
        client.list_calendars(tokens.access_token)
    assert err.value.retry_after is None and err.value.retry_at is None

    when = clock.now() + timedelta(seconds=90)
    google.fail_next(429, retry_after=format_datetime(when, usegmt=True))  # the HTTP-date form
    with pytest.raises(GoogleRateLimited) as err:
        client.list_calendars(tokens.access_token)
    assert err.value.retry_after == 90.0


def test_5xx_is_retryable_and_other_403_is_permanent(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    google.fail_next(503, retry_after=3)
    with pytest.raises(GoogleUnavailable) as err:
        client.get_event(tokens.access_token, "primary", event_id_for("apt_1"))
    assert err.value.retryable and err.value.retry_after == 3.0 and err.value.http_status == 503
    google.fail_next(500)
    with pytest.raises(GoogleUnavailable) as err:
        client.delete_event(tokens.access_token, "primary", event_id_for("apt_1"))
    assert err.value.reason == "backendError" and err.value.retry_after is None
    google.fail_next(403, "forbiddenForNonOrganizer")
    with pytest.raises(GoogleRequestRejected) as err:
        client.patch_event(tokens.access_token, "primary", event_id_for("apt_1"), draft())
    assert not err.value.retryable and isinstance(err.value, PermanentProviderError)


def test_token_endpoint_outage_is_retryable_not_invalid_grant(
    client: GoogleCalendarClient, google: FakeGoogle, tokens: GoogleTokens
) -> None:
    google.fail_next(503, endpoint="token", retry_after=2)
    with pytest.raises(GoogleUnavailable) as err:
        client.refresh(tokens.refresh_token or "")
    assert err.value.retry_after == 2.0 and not isinstance(err.value, GoogleConnectionBroken)
    assert client.refresh(tokens.refresh_token or "").access_token  # the grant is intact


def test_transport_failures_never_leak_httpx(http: httpx.Client, clock: FrozenClock) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = GoogleCalendarClient(
        client_id="id",
        client_secret="secret",
        redirect_uri="http://127.0.0.1/cb",
        http=http,
        token_base=f"http://127.0.0.1:{port}",
        api_base=f"http://127.0.0.1:{port}/calendar/v3",
        clock=clock,
    )
    with pytest.raises(GoogleUnavailable) as err:
        dead.list_calendars("token")
    assert err.value.maybe_applied is False and isinstance(err.value.__cause__, httpx.ConnectError)
    with pytest.raises(GoogleUnavailable):
        dead.refresh("rt")
