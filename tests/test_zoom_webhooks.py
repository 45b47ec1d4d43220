"""Zoom webhook verification (contract EXTERNAL_APIS.md §1.8): the contract's worked examples, tampering,
stale timestamps, and signed deliveries from the fake Zoom to a Flask receiver built on the module."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from flask import Flask, request
from werkzeug.serving import make_server

from automations.clock import FrozenClock
from automations.errors import BadRequest, PunctualError
from providers.zoom_client import ZoomClient, ZoomInvalidGrant
from providers.zoom_webhooks import (
    APP_DEAUTHORIZED,
    InvalidZoomSignature,
    StaleZoomWebhook,
    ZoomDeauthorization,
    encrypt_plain_token,
    parse_app_deauthorized,
    parse_event,
    sign,
    url_validation_response,
    verify_and_parse,
    verify_request,
    verify_signature,
)
from tests.fakes.zoom_server import FakeZoom

# Contract §1.8 worked example, byte for byte.
SECRET = "zoom-webhook-secret-123"
TIMESTAMP = "1700000000"
BODY = (
    b'{"event":"app_deauthorized","event_ts":1700000000123,"payload":{"account_id":"EabCDEFghiLHMA",'
    b'"user_id":"z9jkdsfsdfjhdkfjQ","signature":"827edc3452044f0bc86bdd5684afb7d1e6becfa1a767f24df1b287853cf73000",'
    b'"deauthorization_time":"2019-06-17T13:52:28.632Z","client_id":"ADZ9k9bTWmGUoUbECUKU_a"}}'
)
SIGNATURE = "v0=8cced0763616d183bd6f21243a5f6b9092a696801d4191384b7953129dc503f8"
AT = datetime.fromtimestamp(1700000000, UTC)


def test_contract_signature_example() -> None:
    assert sign(SECRET, TIMESTAMP, BODY) == SIGNATURE
    assert sign(SECRET, int(TIMESTAMP), BODY.decode()) == SIGNATURE
    verify_signature(SECRET, body=BODY, signature=SIGNATURE, timestamp=TIMESTAMP, now=AT)


def test_contract_url_validation_example() -> None:
    plain = "qgg8vlvZRS6UYooatFL8Aw"
    expected = "15f1519abf9a25d5161b63bdaf2f7dd77d2871dda09114161b8354eadf541caa"
    assert encrypt_plain_token(SECRET, plain) == expected
    body = json.dumps(
        {"payload": {"plainToken": plain}, "event_ts": 1654503849680, "event": "endpoint.url_validation"}
    )
    event = parse_event(body)
    assert event.is_url_validation
    assert url_validation_response(SECRET, event) == {"plainToken": plain, "encryptedToken": expected}
    assert url_validation_response(SECRET, plain)["encryptedToken"] == expected


@pytest.mark.parametrize(
    ("body", "signature", "timestamp", "secret"),
    [
        (BODY.replace(b"z9jk", b"z9jK"), SIGNATURE, TIMESTAMP, SECRET),  # body altered
        (BODY, SIGNATURE, "1700000001", SECRET),  # timestamp altered
        (BODY, SIGNATURE, TIMESTAMP, "another-secret"),
        (BODY, SIGNATURE[3:], TIMESTAMP, SECRET),  # no v0= prefix
        (BODY, SIGNATURE.upper(), TIMESTAMP, SECRET),
        (BODY, None, TIMESTAMP, SECRET),
        (BODY, SIGNATURE, None, SECRET),
        (BODY, SIGNATURE, "17e8", SECRET),
        (BODY, "v0=é", TIMESTAMP, SECRET),  # non-ASCII header value: rejected, not a TypeError
        (BODY, sign("", TIMESTAMP, BODY), TIMESTAMP, ""),  # no secret configured: never "valid"
        # The same JSON re-serialised by Python (spaces after separators) no longer matches: raw body only.
        (json.dumps(json.loads(BODY)).encode(), SIGNATURE, TIMESTAMP, SECRET),
    ],
)
def test_tampered_or_unsigned_requests_are_rejected(body, signature, timestamp, secret) -> None:
    with pytest.raises(InvalidZoomSignature) as info:
        verify_signature(secret, body=body, signature=signature, timestamp=timestamp, now=AT)
    assert type(info.value) is InvalidZoomSignature
    assert info.value.status_code == 401 and isinstance(info.value, PunctualError)


def test_timestamp_tolerance_is_300_seconds_both_ways() -> None:
    for offset in (-300, 0, 300):
        verify_signature(
            SECRET, body=BODY, signature=SIGNATURE, timestamp=TIMESTAMP, now=AT + timedelta(seconds=offset)
        )
    for offset in (-301, 301, 86400):
        with pytest.raises(StaleZoomWebhook):
            verify_signature(
                SECRET,
                body=BODY,
                signature=SIGNATURE,
                timestamp=TIMESTAMP,
                now=AT + timedelta(seconds=offset),
            )
    an_hour_late = AT + timedelta(hours=1)
    verify_signature(
        SECRET, body=BODY, signature=SIGNATURE, timestamp=TIMESTAMP, now=an_hour_late, tolerance_seconds=3600
    )


def test_verify_request_reads_headers_in_any_case() -> None:
    headers = {"X-Zm-Signature": SIGNATURE, "X-ZM-REQUEST-TIMESTAMP": TIMESTAMP}
    verify_request(SECRET, headers, BODY, now=AT)
    event = verify_and_parse(SECRET, httpx.Headers(headers), BODY, now=AT)
    assert event.event == APP_DEAUTHORIZED and event.event_ts == 1700000000123


def test_parse_app_deauthorized_contract_example() -> None:
    deauth = parse_app_deauthorized(BODY)
    assert (deauth.user_id, deauth.account_id) == ("z9jkdsfsdfjhdkfjQ", "EabCDEFghiLHMA")
    assert deauth.client_id == "ADZ9k9bTWmGUoUbECUKU_a"
    assert deauth.deauthorization_time == "2019-06-17T13:52:28.632Z"
    assert deauth.user_data_retention is None and deauth.event_ts == 1700000000123


@pytest.mark.parametrize(
    ("value", "expected"),
    [("false", False), ("true", True), ("TRUE", True), (True, True), (False, False), (1, None)],
)
def test_user_data_retention_is_parsed_leniently(value, expected) -> None:
    body = json.dumps(
        {
            "event": "app_deauthorized",
            "payload": {"account_id": "a", "user_id": "u", "user_data_retention": value},
        }
    )
    assert parse_app_deauthorized(body).user_data_retention is expected


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"event": "app_deauthorized"}',
        b'{"event": "meeting.started", "payload": {}}',
        b'{"event": "app_deauthorized", "payload": {"user_id": "u"}}',
        b'{"event": "app_deauthorized", "payload": {"user_id": "u", "account_id": 5}}',
    ],
)
def test_malformed_deauthorization_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_app_deauthorized(body)


def test_url_validation_response_refuses_other_events() -> None:
    with pytest.raises(BadRequest):
        url_validation_response(SECRET, parse_event(BODY))
    with pytest.raises(BadRequest):
        url_validation_response(SECRET, parse_event(b'{"event":"endpoint.url_validation","payload":{}}'))


# ------------------------------------------------------------------ the fake sends, a Flask app receives


def make_receiver(secret: str, clock: FrozenClock) -> tuple[Flask, list[ZoomDeauthorization]]:
    """What the real /hooks/zoom endpoint will look like, built only on providers.zoom_webhooks."""
    app = Flask("zoom-hook-test")
    seen: list[ZoomDeauthorization] = []

    @app.post("/hooks/zoom")
    def hook():
        try:
            event = verify_and_parse(secret, request.headers, request.get_data(), now=clock.now())
        except PunctualError as exc:
            return exc.to_dict(), exc.status_code
        if event.is_url_validation:
            return url_validation_response(secret, event), 200
        if event.event == APP_DEAUTHORIZED:
            seen.append(parse_app_deauthorized(event))
        return "", 204

    return app, seen


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def zoom(clock: FrozenClock) -> Iterator[FakeZoom]:
    with FakeZoom(clock=clock, webhook_secret=SECRET) as fake:
        yield fake
    assert not fake.errors


@pytest.fixture
def receiver(clock: FrozenClock) -> Iterator[tuple[httpx.Client, list[ZoomDeauthorization]]]:
    app, seen = make_receiver(SECRET, clock)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://app.test") as inproc:
        yield inproc, seen


URL = "http://app.test/hooks/zoom"


def test_fake_url_validation_is_answered(zoom: FakeZoom, receiver) -> None:
    inproc, _ = receiver
    plain, response = zoom.send_url_validation(URL, client=inproc)
    assert response.status_code == 200
    assert response.json() == {"plainToken": plain, "encryptedToken": zoom.expected_encrypted_token(plain)}


def test_fake_app_deauthorized_is_verified_and_parsed(zoom: FakeZoom, receiver, clock: FrozenClock) -> None:
    inproc, seen = receiver
    user = zoom.add_user()
    with httpx.Client(timeout=5) as http:
        client = ZoomClient(
            client_id=zoom.client_id,
            client_secret=zoom.client_secret,
            redirect_uri=zoom.redirect_uri,
            http=http,
            api_base=zoom.api_base,
            oauth_base=zoom.oauth_base,
        )
        tokens = client.exchange_code(zoom.mint_code(user.id), now=clock.now())
        response = zoom.send_app_deauthorized(URL, user.id, client=inproc)
        assert response.status_code == 204
        assert [(d.user_id, d.account_id, d.user_data_retention) for d in seen] == [
            (user.id, user.account_id, False)
        ]
        # Uninstalling in Zoom also killed the grant on Zoom's side.
        with pytest.raises(ZoomInvalidGrant):
            client.refresh(tokens.refresh_token, now=clock.now())


def test_fake_tampered_wrong_secret_and_stale_deliveries_are_rejected(
    zoom: FakeZoom, receiver, clock: FrozenClock
) -> None:
    inproc, seen = receiver
    user = zoom.add_user()
    tampered = zoom.send_app_deauthorized(URL, user.id, tamper=True, client=inproc)
    assert tampered.status_code == 401 and tampered.json()["code"] == "invalid_zoom_signature"
    wrong = zoom.send_app_deauthorized(URL, user.id, secret="not-the-secret", client=inproc)
    assert wrong.status_code == 401
    old = int(clock.now().timestamp()) - 301
    stale = zoom.send_app_deauthorized(URL, user.id, timestamp=old, client=inproc)
    assert stale.status_code == 401 and stale.json()["code"] == "stale_zoom_webhook"
    assert seen == []


def test_fake_delivers_over_a_real_socket(zoom: FakeZoom, clock: FrozenClock) -> None:
    app, seen = make_receiver(SECRET, clock)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hooks/zoom"
        plain, response = zoom.send_url_validation(url)
        assert response.json()["encryptedToken"] == encrypt_plain_token(SECRET, plain)
        user = zoom.add_user()
        assert zoom.send_app_deauthorized(url, user.id).status_code == 204
        assert [d.user_id for d in seen] == [user.id]
    finally:
        server.shutdown()
        thread.join(timeout=5)
