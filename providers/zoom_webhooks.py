"""Zoom webhooks: signature verification, the ``endpoint.url_validation`` answer, ``app_deauthorized``.

Implements contract ``EXTERNAL_APIS.md`` §1.8:

* ``x-zm-signature`` is ``v0=`` + lowercase hex HMAC-SHA256 (key: the app's Secret Token) of
  ``"v0:" + x-zm-request-timestamp + ":" + raw body``. The **raw** body bytes must be used: re-serialising
  parsed JSON with Python's ``json.dumps`` does not reproduce Zoom's compact encoding.
* The timestamp (Unix seconds) must be within ``tolerance`` (300 s) of ``now``: a replay guard the contract
  recommends (it is not a Zoom rule).
* ``endpoint.url_validation`` is signed too; it is answered with ``plainToken`` and ``encryptedToken`` =
  hex HMAC-SHA256(secret, plainToken), with HTTP 200 within 3 seconds.

A receiver does::

    event = verify_and_parse(secret, request.headers, request.get_data(), now=clock.now())
    if event.is_url_validation:
        return url_validation_response(secret, event), 200
    if event.event == APP_DEAUTHORIZED:
        deauth = parse_app_deauthorized(event)   # (user_id, account_id) -> drop that connection's tokens
    return "", 204                               # acknowledge fast; Zoom retries, so handling is idempotent

Failures raise ``automations.errors`` types (:class:`InvalidZoomSignature` is a 401, malformed bodies are 400).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from automations.clock import ensure_utc
from automations.errors import BadRequest, Unauthorized
from providers.headers import header

SIGNATURE_HEADER = "x-zm-signature"
TIMESTAMP_HEADER = "x-zm-request-timestamp"
SIGNATURE_VERSION = "v0"
DEFAULT_TOLERANCE_SECONDS = 300

URL_VALIDATION = "endpoint.url_validation"
APP_DEAUTHORIZED = "app_deauthorized"


class InvalidZoomSignature(Unauthorized):
    """The request was not signed with our Secret Token (or its headers are missing or malformed)."""

    code = "invalid_zoom_signature"


class StaleZoomWebhook(InvalidZoomSignature):
    """Correctly signed but the timestamp is outside the tolerance: a possible replay."""

    code = "stale_zoom_webhook"


@dataclass(frozen=True)
class ZoomEvent:
    """A parsed webhook: ``{"event", "event_ts" (epoch ms), "payload"}``."""

    event: str
    event_ts: int | None
    payload: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_url_validation(self) -> bool:
        return self.event == URL_VALIDATION


@dataclass(frozen=True)
class ZoomDeauthorization:
    """``app_deauthorized``: the user uninstalled the app; delete the tokens of (account_id, user_id)."""

    user_id: str
    account_id: str
    client_id: str | None = None
    deauthorization_time: str | None = None
    # True: the user lets us keep their data; False: delete it within 10 days; None: not sent (often).
    user_data_retention: bool | None = None
    event_ts: int | None = None


def sign(secret_token: str, timestamp: str | int, body: bytes | str) -> str:
    """The ``x-zm-signature`` value Zoom sends for ``body`` at ``timestamp``: ``v0=<hex>``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    message = f"{SIGNATURE_VERSION}:{timestamp}:".encode() + raw
    digest = hmac.new(secret_token.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify_signature(
    secret_token: str,
    *,
    body: bytes | str,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise :class:`InvalidZoomSignature` unless ``signature`` matches, and :class:`StaleZoomWebhook` if
    it matches but ``timestamp`` is more than ``tolerance_seconds`` away from ``now``."""
    if not secret_token:
        # An empty key would make every attacker's signature trivially computable: refuse outright.
        raise InvalidZoomSignature("Zoom webhook secret token is not configured")
    if not signature or not timestamp:
        raise InvalidZoomSignature("missing Zoom signature headers")
    timestamp = timestamp.strip()
    # Unix seconds are 10 digits; hundreds of digits would overflow the age arithmetic below.
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        raise InvalidZoomSignature("malformed x-zm-request-timestamp")
    expected = sign(secret_token, timestamp, body)
    # compare_digest on bytes: constant time, and no TypeError on non-ASCII header values.
    if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
        raise InvalidZoomSignature("Zoom webhook signature mismatch")
    # Checked after the signature so an unsigned request never learns anything about our clock.
    age = ensure_utc(now).timestamp() - int(timestamp)
    if abs(age) > tolerance_seconds:
        raise StaleZoomWebhook(f"Zoom webhook timestamp is {int(age)} s away from now")


def verify_request(
    secret_token: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """:func:`verify_signature` reading the two headers from ``headers`` (any capitalisation)."""
    verify_signature(
        secret_token,
        body=body,
        signature=header(headers, SIGNATURE_HEADER),
        timestamp=header(headers, TIMESTAMP_HEADER),
        now=now,
        tolerance_seconds=tolerance_seconds,
    )


def parse_event(body: bytes | str) -> ZoomEvent:
    """Parse a webhook body; :class:`~automations.errors.BadRequest` when it is not a Zoom event."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("Zoom webhook body is not JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("event"), str):
        raise BadRequest("Zoom webhook body has no event name")
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise BadRequest("Zoom webhook body has no payload object")
    event_ts = data.get("event_ts")
    return ZoomEvent(
        event=data["event"],
        event_ts=event_ts if isinstance(event_ts, int) and not isinstance(event_ts, bool) else None,
        payload=payload,
        raw=data,
    )


def verify_and_parse(
    secret_token: str,
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: datetime,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> ZoomEvent:
    """Verify, then parse: nothing in an unsigned body is ever looked at."""
    verify_request(secret_token, headers, body, now=now, tolerance_seconds=tolerance_seconds)
    return parse_event(body)


def encrypt_plain_token(secret_token: str, plain_token: str) -> str:
    """Lowercase hex HMAC-SHA256(key=secret_token, msg=plain_token)."""
    return hmac.new(secret_token.encode("utf-8"), plain_token.encode("utf-8"), hashlib.sha256).hexdigest()


def url_validation_response(secret_token: str, event: ZoomEvent | str) -> dict[str, str]:
    """The JSON to answer ``endpoint.url_validation`` with (HTTP 200): ``{"plainToken", "encryptedToken"}``.

    ``event`` is the parsed (already verified) event, or the ``plainToken`` itself."""
    if isinstance(event, ZoomEvent):
        if not event.is_url_validation:
            raise BadRequest(f"not an {URL_VALIDATION} event: {event.event!r}")
        plain = event.payload.get("plainToken")
    else:
        plain = event
    if not isinstance(plain, str) or not plain:
        raise BadRequest("endpoint.url_validation without a plainToken")
    return {"plainToken": plain, "encryptedToken": encrypt_plain_token(secret_token, plain)}


def parse_app_deauthorized(event: ZoomEvent | bytes | str) -> ZoomDeauthorization:
    """The (Zoom user id, account id) an ``app_deauthorized`` event is about, plus its optional fields."""
    if not isinstance(event, ZoomEvent):
        event = parse_event(event)
    if event.event != APP_DEAUTHORIZED:
        raise BadRequest(f"not an {APP_DEAUTHORIZED} event: {event.event!r}")
    payload = event.payload
    user_id = payload.get("user_id")
    account_id = payload.get("account_id")
    if not isinstance(user_id, str) or not user_id or not isinstance(account_id, str) or not account_id:
        raise BadRequest("app_deauthorized without user_id and account_id")
    return ZoomDeauthorization(
        user_id=user_id,
        account_id=account_id,
        client_id=_str_or_none(payload.get("client_id")),
        deauthorization_time=_str_or_none(payload.get("deauthorization_time")),
        user_data_retention=_lenient_bool(payload.get("user_data_retention")),
        event_ts=event.event_ts,
    )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _lenient_bool(value: Any) -> bool | None:
    # Documented as a boolean but shown as the string "false" in Zoom's own example (contract §1.8 [U]).
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    return None
