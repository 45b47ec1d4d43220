"""ZoomClient against the local fake Zoom (real httpx over a socket), plus error-mapping edge cases that
the fake does not produce, through ``httpx.MockTransport``. Contract: EXTERNAL_APIS.md §1.1-§1.7."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from automations.clock import FrozenClock
from automations.errors import ProviderError
from providers.base import MeetingInfo, MeetingRequest
from providers.zoom_client import (
    ZoomAuthError,
    ZoomClient,
    ZoomConnectionBroken,
    ZoomDailyLimitExceeded,
    ZoomInvalidGrant,
    ZoomMeeting,
    ZoomMeetingNotFound,
    ZoomRateLimited,
    ZoomRequestRejected,
    ZoomTokens,
    ZoomUnavailable,
    code_challenge_s256,
    make_code_verifier,
)
from tests.fakes.zoom_server import FakeZoom, FakeZoomUser

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def zoom(clock: FrozenClock) -> Iterator[FakeZoom]:
    with FakeZoom(clock=clock) as fake:
        yield fake
    assert not fake.errors, fake.errors  # the fake itself never crashed


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


@pytest.fixture
def client(zoom: FakeZoom, http: httpx.Client, clock: FrozenClock) -> ZoomClient:
    return ZoomClient(
        client_id=zoom.client_id,
        client_secret=zoom.client_secret,
        redirect_uri=zoom.redirect_uri,
        http=http,
        api_base=zoom.api_base,
        oauth_base=zoom.oauth_base,
        clock=clock,
    )


@pytest.fixture
def host(zoom: FakeZoom) -> FakeZoomUser:
    return zoom.add_user(email="jchill@example.com", user_id="KDcuGIm1QgePTO8WbOqwIQ")


@pytest.fixture
def tokens(client: ZoomClient, zoom: FakeZoom, host: FakeZoomUser, clock: FrozenClock) -> ZoomTokens:
    return client.exchange_code(zoom.mint_code(host.id), now=clock.now())


def request(**kw) -> MeetingRequest:
    base = {
        "host_user_id": "usr_1",
        "topic": "Follow-up consultation – Ana Souza",
        "start_at": datetime(2026, 3, 10, 15, 0, tzinfo=UTC),
        "duration_minutes": 30,
        "timezone": "America/New_York",
        "agenda": "Appointment apt_123",
    }
    base.update(kw)
    return MeetingRequest(**base)


# ----------------------------------------------------------------------------------------------- OAuth


def test_authorize_url_carries_state_and_pkce(client: ZoomClient, zoom: FakeZoom) -> None:
    url = client.authorize_url("st-123", code_challenge="abc")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{zoom.oauth_base}/oauth/authorize"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q == {
        "response_type": "code",
        "client_id": zoom.client_id,
        "redirect_uri": zoom.redirect_uri,
        "state": "st-123",
        "code_challenge": "abc",
        "code_challenge_method": "S256",
    }
    plain = parse_qs(urlsplit(client.authorize_url("s")).query)
    assert "code_challenge" not in plain and "code_challenge_method" not in plain


def test_pkce_challenge_is_rfc7636_s256() -> None:
    # RFC 7636 appendix B example.
    assert (
        code_challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    verifier = make_code_verifier()
    assert 43 <= len(verifier) <= 128 and verifier != make_code_verifier()


def test_full_browser_flow_with_state_and_pkce(
    client: ZoomClient, zoom: FakeZoom, host: FakeZoomUser, http: httpx.Client, clock: FrozenClock
) -> None:
    verifier = make_code_verifier()
    url = client.authorize_url("csrf-state-1", code_challenge=code_challenge_s256(verifier))
    redirect = http.get(url, follow_redirects=False)
    assert redirect.status_code == 302
    location = urlsplit(redirect.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == zoom.redirect_uri
    back = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert back["state"] == "csrf-state-1"

    tokens = client.exchange_code(back["code"], verifier, now=clock.now())
    assert tokens.expires_at == START + timedelta(seconds=3599)
    assert "meeting:write:meeting" in tokens.scopes and "user:read:user" in tokens.scopes
    assert not tokens.expires_soon(clock.now())
    assert tokens.expires_soon(START + timedelta(seconds=3540))
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)

    # What went over the wire: Basic client auth and a form body (contract §1.1 step 2).
    (sent,) = zoom.requests_to("/oauth/token")
    expected = base64.b64encode(f"{zoom.client_id}:{zoom.client_secret}".encode()).decode()
    assert sent.headers["authorization"] == f"Basic {expected}"
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert sent.form() == {
        "grant_type": "authorization_code",
        "code": back["code"],
        "redirect_uri": zoom.redirect_uri,
        "code_verifier": verifier,
    }

    user = client.me(tokens.access_token)
    assert (user.id, user.email, user.account_id) == (host.id, host.email, host.account_id)
    assert user.type == 2 and user.display_name == "Jill Chill"


def test_pkce_verifier_must_match(client: ZoomClient, zoom: FakeZoom, host: FakeZoomUser) -> None:
    verifier = make_code_verifier()
    code = zoom.mint_code(host.id, code_challenge=code_challenge_s256(verifier))
    with pytest.raises(ZoomInvalidGrant):
        client.exchange_code(code, make_code_verifier())
    code = zoom.mint_code(host.id, code_challenge=code_challenge_s256(verifier))
    with pytest.raises(ZoomInvalidGrant):
        client.exchange_code(code)  # verifier forgotten


def test_code_is_single_use_and_expires_after_five_minutes(
    client: ZoomClient, zoom: FakeZoom, host: FakeZoomUser, clock: FrozenClock
) -> None:
    code = zoom.mint_code(host.id)
    client.exchange_code(code, now=clock.now())
    with pytest.raises(ZoomInvalidGrant) as reused:
        client.exchange_code(code, now=clock.now())
    assert reused.value.http_status == 400 and not reused.value.retryable

    late = zoom.mint_code(host.id)
    clock.advance(minutes=5, seconds=1)
    with pytest.raises(ZoomInvalidGrant):
        client.exchange_code(late, now=clock.now())


def test_wrong_client_secret_is_a_configuration_error_not_a_broken_grant(
    zoom: FakeZoom, host: FakeZoomUser, http: httpx.Client
) -> None:
    bad = ZoomClient(
        client_id=zoom.client_id,
        client_secret="nope",
        redirect_uri=zoom.redirect_uri,
        http=http,
        api_base=zoom.api_base,
        oauth_base=zoom.oauth_base,
    )
    with pytest.raises(ZoomRequestRejected) as info:
        bad.exchange_code(zoom.mint_code(host.id))
    assert not isinstance(info.value, ZoomConnectionBroken)
    assert info.value.zoom_code == "invalid_client" and info.value.http_status == 401
    assert "nope" not in str(info.value)


def test_redirect_uri_mismatch_is_refused_at_authorize(zoom: FakeZoom, http: httpx.Client) -> None:
    client = ZoomClient(
        client_id=zoom.client_id,
        client_secret=zoom.client_secret,
        redirect_uri="http://evil.example/cb",
        http=http,
        oauth_base=zoom.oauth_base,
    )
    response = http.get(client.authorize_url("s"), follow_redirects=False)
    assert response.status_code == 400 and response.json()["code"] == 4709


def test_refresh_rotates_and_the_old_refresh_token_stops_working(
    client: ZoomClient, tokens: ZoomTokens, clock: FrozenClock, host: FakeZoomUser
) -> None:
    clock.advance(minutes=30)
    fresh = client.refresh(tokens.refresh_token, now=clock.now())
    assert fresh.refresh_token != tokens.refresh_token
    assert fresh.access_token != tokens.access_token
    assert fresh.expires_at == clock.now() + timedelta(seconds=3599)
    assert client.me(fresh.access_token).id == host.id

    with pytest.raises(ZoomInvalidGrant) as old:
        client.refresh(tokens.refresh_token, now=clock.now())
    assert old.value.zoom_code == "invalid_grant" and "Invalid Token!" in str(old.value)
    # The rotated one keeps working, and rotates again.
    again = client.refresh(fresh.refresh_token, now=clock.now())
    assert again.refresh_token not in (fresh.refresh_token, tokens.refresh_token)


def test_invalid_grant_means_connection_broken(
    client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens, host: FakeZoomUser
) -> None:
    zoom.invalidate_refresh_tokens(host.id)
    with pytest.raises(ZoomInvalidGrant) as info:
        client.refresh(tokens.refresh_token)
    error = info.value
    assert isinstance(error, ZoomConnectionBroken) and isinstance(error, ProviderError)
    assert error.retryable is False and error.provider_code == "invalid_grant"
    assert tokens.refresh_token not in str(error)


def test_expired_access_token_then_refresh_then_success(
    client: ZoomClient, tokens: ZoomTokens, clock: FrozenClock, host: FakeZoomUser
) -> None:
    clock.advance(hours=1)  # the access token (3599 s) has expired
    calls = 0

    def with_refresh(call: Callable[[str], object]) -> object:
        # The caller pattern: one refresh (persisted first, under a lock, in real code), one retry.
        nonlocal tokens, calls
        try:
            calls += 1
            return call(tokens.access_token)
        except ZoomAuthError as exc:
            assert exc.zoom_code == 124 and exc.http_status == 401
            tokens = client.refresh(tokens.refresh_token, now=clock.now())
            calls += 1
            return call(tokens.access_token)

    user = with_refresh(client.me)
    assert user.id == host.id and calls == 2
    meeting = with_refresh(lambda token: client.create_meeting(token, request()))
    assert isinstance(meeting, ZoomMeeting) and calls == 3


def test_unknown_access_token_is_auth_error(client: ZoomClient, host: FakeZoomUser) -> None:
    with pytest.raises(ZoomAuthError) as info:
        client.me("not-a-token")
    assert info.value.zoom_code == 124 and "Invalid access token" in str(info.value)


def test_revoke_kills_the_grant_and_is_idempotent(
    client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens
) -> None:
    client.revoke(tokens.refresh_token)
    client.revoke(tokens.refresh_token)
    assert zoom.revoked == [tokens.refresh_token, tokens.refresh_token]
    with pytest.raises(ZoomAuthError):
        client.me(tokens.access_token)
    with pytest.raises(ZoomInvalidGrant):
        client.refresh(tokens.refresh_token)


# -------------------------------------------------------------------------------------------- meetings


def test_create_get_update_delete(client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens, host) -> None:
    meeting = client.create_meeting(tokens.access_token, request())
    assert isinstance(meeting, MeetingInfo)
    assert meeting.external_id.isdigit() and meeting.join_url.startswith(f"{zoom.base_url}/j/")
    assert meeting.start_time == "2026-03-10T15:00:00Z" and meeting.timezone == "America/New_York"
    assert meeting.host_id == host.id and meeting.raw["id"] == int(meeting.external_id)

    (sent,) = zoom.requests_to("/v2/users/me/meetings", "POST")
    body = sent.json()
    assert body["type"] == 2 and body["start_time"] == "2026-03-10T15:00:00Z" and body["duration"] == 30
    assert body["settings"]["approval_type"] == 2 and body["settings"]["email_notification"] is False
    assert sent.headers["authorization"] == f"Bearer {tokens.access_token}"

    fetched = client.get_meeting(tokens.access_token, meeting.external_id)
    assert fetched == meeting

    later = datetime(2026, 3, 11, 9, 30, tzinfo=UTC)
    assert client.update_meeting(tokens.access_token, meeting.external_id, request(start_at=later)) is None
    (patch,) = zoom.requests_to("/v2/meetings/", "PATCH")
    assert "type" not in patch.json() and "settings" not in patch.json()
    updated = client.get_meeting(tokens.access_token, int(meeting.external_id))
    assert updated.start_time == "2026-03-11T09:30:00Z"
    assert updated.join_url == meeting.join_url  # same meeting, same link

    assert client.delete_meeting(tokens.access_token, meeting.external_id) is True
    assert client.delete_meeting(tokens.access_token, meeting.external_id) is False  # already gone: ok
    with pytest.raises(ZoomMeetingNotFound):
        client.get_meeting(tokens.access_token, meeting.external_id)


def test_long_topic_and_agenda_are_cut_to_zooms_limits(client: ZoomClient, tokens: ZoomTokens) -> None:
    meeting = client.create_meeting(tokens.access_token, request(topic="t" * 300, agenda="a" * 3000))
    assert len(meeting.raw["topic"]) == 200 and len(meeting.raw["agenda"]) == 2000


def test_meeting_deleted_behind_our_back_maps_to_not_found_and_can_be_recreated(
    client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens
) -> None:
    meeting = client.create_meeting(tokens.access_token, request())
    zoom.delete_meeting_externally(meeting.external_id)
    with pytest.raises(ZoomMeetingNotFound) as info:
        client.update_meeting(tokens.access_token, meeting.external_id, request())
    assert info.value.http_status == 404 and info.value.zoom_code == 3001 and not info.value.retryable
    assert info.value.tracking_id  # x-zm-trackingid kept for support tickets
    # The caller recreates it.
    again = client.create_meeting(tokens.access_token, request())
    assert again.external_id != meeting.external_id


def test_validation_error_is_permanent_with_fields(client: ZoomClient, tokens: ZoomTokens) -> None:
    with pytest.raises(ZoomRequestRejected) as info:
        client.create_meeting(tokens.access_token, request(timezone="Mars/Olympus_Mons"))
    assert info.value.zoom_code == 300 and info.value.http_status == 400 and not info.value.retryable
    assert info.value.fields == {"timezone": ["Invalid field."]}


def test_missing_scope_means_reauthorize(client: ZoomClient, zoom: FakeZoom, clock: FrozenClock) -> None:
    reader = zoom.add_user(scopes=("user:read:user",))
    tokens = client.exchange_code(zoom.mint_code(reader.id), now=clock.now())
    assert client.me(tokens.access_token).id == reader.id
    with pytest.raises(ZoomConnectionBroken) as info:
        client.create_meeting(tokens.access_token, request())
    assert info.value.zoom_code == 4711 and "meeting:write:meeting" in str(info.value)


def test_other_hosts_meeting_looks_missing(
    client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens, clock: FrozenClock
) -> None:
    meeting = client.create_meeting(tokens.access_token, request())
    other = zoom.add_user()
    other_tokens = client.exchange_code(zoom.mint_code(other.id), now=clock.now())
    with pytest.raises(ZoomMeetingNotFound):
        client.get_meeting(other_tokens.access_token, meeting.external_id)


# ----------------------------------------------------------------------------------------- rate limits


def test_429_with_retry_after_seconds(client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens) -> None:
    zoom.throttle(1, retry_after="7")
    with pytest.raises(ZoomRateLimited) as info:
        client.create_meeting(tokens.access_token, request())
    error = info.value
    assert not isinstance(error, ZoomDailyLimitExceeded)
    assert error.retryable and error.retry_after == 7 and error.retry_at == START + timedelta(seconds=7)
    assert error.http_status == 429
    client.create_meeting(tokens.access_token, request())  # the next request goes through


def test_429_without_retry_after_backs_off_a_second(
    client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens
) -> None:
    zoom.throttle(1, retry_after=None)
    with pytest.raises(ZoomRateLimited) as info:
        client.me(tokens.access_token)
    assert info.value.retry_after == 1.0


def test_daily_limit_after_100_meeting_requests(
    client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens, host: FakeZoomUser, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 3, 1, 23, 0, tzinfo=UTC))
    tokens = client.refresh(tokens.refresh_token, now=clock.now())
    first = client.create_meeting(tokens.access_token, request())
    client.update_meeting(tokens.access_token, first.external_id, request(duration_minutes=45))
    client.delete_meeting(tokens.access_token, first.external_id)
    for _ in range(97):
        client.create_meeting(tokens.access_token, request())
    assert zoom.meeting_requests_today(host.id) == 100
    client.me(tokens.access_token)  # reads are not charged
    client.get_meeting(tokens.access_token, zoom.meetings_of(host.id)[0]["id"])

    with pytest.raises(ZoomDailyLimitExceeded) as info:
        client.create_meeting(tokens.access_token, request())
    error = info.value
    assert isinstance(error, ZoomRateLimited) and error.retryable
    assert error.retry_at == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert error.retry_after == 3600
    assert "daily rate limit" in str(error)
    with pytest.raises(ZoomDailyLimitExceeded):
        client.update_meeting(tokens.access_token, zoom.meetings_of(host.id)[0]["id"], request())
    assert zoom.meeting_requests_today(host.id) == 100  # refused requests are not charged

    # Another host has their own budget.
    other = zoom.add_user()
    other_tokens = client.exchange_code(zoom.mint_code(other.id), now=clock.now())
    client.create_meeting(other_tokens.access_token, request())

    # 00:00 UTC resets it.
    clock.set(datetime(2026, 3, 2, 0, 0, tzinfo=UTC))
    tokens = client.refresh(tokens.refresh_token, now=clock.now())
    client.create_meeting(tokens.access_token, request())
    assert zoom.meeting_requests_today(host.id) == 1


def test_server_error_is_retryable(client: ZoomClient, zoom: FakeZoom, tokens: ZoomTokens) -> None:
    zoom.fail_next(1, status=503)
    with pytest.raises(ZoomUnavailable) as info:
        client.create_meeting(tokens.access_token, request())
    assert info.value.retryable and info.value.http_status == 503 and info.value.maybe_applied
    zoom.fail_next(1, status=500)
    with pytest.raises(ZoomUnavailable):
        client.refresh(tokens.refresh_token)


def test_unreachable_zoom_is_retryable_and_not_applied(http: httpx.Client) -> None:
    with FakeZoom() as gone:
        dead = gone.base_url
    client = ZoomClient(
        client_id="x", client_secret="y", redirect_uri="http://cb", http=http, api_base=f"{dead}/v2"
    )
    with pytest.raises(ZoomUnavailable) as info:
        client.me("token")
    assert info.value.maybe_applied is False
    assert isinstance(info.value.__cause__, httpx.ConnectError)


# --------------------------------------------------------------------- mapping cases the fake cannot show


def mock_client(handler: Callable[[httpx.Request], httpx.Response], clock: FrozenClock) -> ZoomClient:
    return ZoomClient(
        client_id="id",
        client_secret="secret",
        redirect_uri="http://127.0.0.1/cb",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        api_base="http://zoom.test/v2",
        oauth_base="http://zoom.test",
        clock=clock,
    )


def test_read_timeout_is_retryable_from_httpx(clock: FrozenClock) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=req)

    with pytest.raises(ZoomUnavailable) as info:
        mock_client(handler, clock).create_meeting("t", request())
    assert info.value.maybe_applied and isinstance(info.value.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("2026-03-02T00:00:00Z", datetime(2026, 3, 2, tzinfo=UTC)),
        ("Mon, 02 Mar 2026 00:00:00 GMT", datetime(2026, 3, 2, tzinfo=UTC)),
        ("garbage", START + timedelta(seconds=1)),
        ("1e30", START + timedelta(days=2)),
    ],
)
def test_retry_after_forms(clock: FrozenClock, retry_after: str, expected: datetime) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"code": 429, "message": "slow down"}, headers={"Retry-After": retry_after}
        )

    with pytest.raises(ZoomRateLimited) as info:
        mock_client(handler, clock).me("t")
    assert info.value.retry_at == expected
    assert info.value.retry_after == (expected - START).total_seconds()


def test_daily_limit_recognised_by_header_and_defaults_to_utc_midnight(clock: FrozenClock) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429, json={"code": 429, "message": "x"}, headers={"X-RateLimit-Type": "Daily-limit"}
        )

    with pytest.raises(ZoomDailyLimitExceeded) as info:
        mock_client(handler, clock).create_meeting("t", request())
    assert info.value.retry_at == datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"reason": "Invalid Token!", "error": "invalid_request"}, ZoomInvalidGrant),
        (401, {"code": 4711, "message": "Refresh token invalid"}, ZoomInvalidGrant),
        (400, {"reason": "Redirect URI mismatch.", "error": "invalid_request"}, ZoomRequestRejected),
        (400, {"code": 4709, "message": "Redirect URI mismatch"}, ZoomRequestRejected),
        (429, {"reason": "slow", "error": "rate_limited"}, ZoomRateLimited),
        (502, {}, ZoomUnavailable),
    ],
)
def test_token_endpoint_error_mapping(clock: FrozenClock, status: int, body: dict, expected: type) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    with pytest.raises(expected) as info:
        mock_client(handler, clock).refresh("rt")
    assert type(info.value) is expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (404, {"code": 1001, "message": "User does not exist: me."}, ZoomConnectionBroken),
        (
            401,
            {"code": 4700, "message": "Invalid access token, does not contain scopes:[x]"},
            ZoomConnectionBroken,
        ),
        (401, {}, ZoomAuthError),
        (404, {}, ZoomMeetingNotFound),
        (400, {"code": 3002, "message": "in progress"}, ZoomRequestRejected),
        (408, {}, ZoomUnavailable),
    ],
)
def test_rest_error_mapping(clock: FrozenClock, status: int, body: dict, expected: type) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    with pytest.raises(expected) as info:
        mock_client(handler, clock).get_meeting("t", 123)
    assert type(info.value) is expected


def test_malformed_success_bodies_are_retryable(clock: FrozenClock) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "a"})
        return httpx.Response(201, content=b"<html>proxy</html>")

    zc = mock_client(handler, clock)
    with pytest.raises(ZoomUnavailable):
        zc.refresh("rt")
    with pytest.raises(ZoomUnavailable):
        zc.create_meeting("t", request())


def test_delete_treats_3001_as_already_gone(clock: FrozenClock) -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        assert req.method == "DELETE" and req.url.path == "/v2/meetings/85746065432"
        return httpx.Response(
            404, json={"code": 3001, "message": "Meeting 85746065432 is not found or has expired."}
        )

    assert mock_client(handler, clock).delete_meeting("t", 85746065432) is False


def test_owned_http_client_is_closed_and_injected_one_is_not() -> None:
    with ZoomClient(client_id="a", client_secret="s3cr3t-value", redirect_uri="c") as owned:
        inner = owned.http
        assert "s3cr3t-value" not in repr(owned)
    assert inner.is_closed
    shared = httpx.Client()
    ZoomClient(client_id="a", client_secret="b", redirect_uri="c", http=shared).close()
    assert not shared.is_closed
    shared.close()


def test_invalid_base_url_is_translated(http: httpx.Client) -> None:
    client = ZoomClient(client_id="a", client_secret="b", redirect_uri="c", http=http, api_base="http://[::1")
    with pytest.raises(ZoomRequestRejected) as info:
        client.me("t")
    assert isinstance(info.value.__cause__, httpx.InvalidURL)
