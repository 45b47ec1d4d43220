"""Outgoing HTTP actions: the generic webhook step and Slack incoming webhooks (contract §6).

Both run over an injectable ``httpx.Client`` and translate every failure into our ProviderError types:

- 2xx: delivered; the response (status, headers, body capped at 64 KiB) is returned to the caller, which
  keeps only the status: a remote body is never shown to the tenant (log, message status, admin email);
- 408/425/429 and 5xx, timeouts, connection failures: retryable (``retry_after`` from ``Retry-After``);
- other 4xx, redirects (never followed: a 3xx would let a target bounce us anywhere, and usually means the
  configured URL is stale), URLs that are not http/https, malformed headers: permanent.

Slack answers with plain-string bodies (``ok``, ``invalid_payload``, ``no_service`` …); a documented one becomes
``provider_code`` so delivery can disable a dead webhook (:data:`SLACK_DEAD_WEBHOOK_ERRORS`); anything else is
reported as the status code alone.

Destinations inside the private network are refused (``providers.destinations``): the URL as written before
sending, and the resolved address at connect time (the default client's :class:`PinnedTransport`).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from automations.clock import Clock
from automations.errors import PermanentProviderError, ProviderError, RetryableProviderError, ValidationError
from providers.destinations import NOTHING_ALLOWED, Allowlist, PinnedTransport, check_destination
from providers.headers import header, parse_retry_after

MAX_RESPONSE_BYTES = 64 * 1024
ALLOWED_SCHEMES = frozenset({"http", "https"})
ALLOWED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
RETRYABLE_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "Punctual-Webhook/0.1"

#: Slack error strings that mean the webhook will never work again: disable it and tell someone (§6).
SLACK_DEAD_WEBHOOK_ERRORS = frozenset(
    {
        "no_service",
        "channel_not_found",
        "channel_is_archived",
        "invalid_token",
        "action_prohibited",
        "no_team",
        "team_disabled",
        "posting_to_general_channel_denied",
    }
)
#: Slack's documented incoming-webhook errors: only these are repeated back (other bodies are the target's).
SLACK_KNOWN_ERRORS = SLACK_DEAD_WEBHOOK_ERRORS | {"invalid_payload", "no_text", "too_many_attachments",
                                                 "user_not_found", "missing_text_or_fallback_or_attachments"}
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password: str


@dataclass(frozen=True)
class BearerAuth:
    token: str


@dataclass(frozen=True)
class WebhookRequest:
    """One webhook step, already rendered (merge fields filled in)."""

    url: str
    method: str = "POST"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    auth: BasicAuth | BearerAuth | None = None


@dataclass(frozen=True)
class HttpActionResult:
    """What the target answered; ``body`` holds at most ``MAX_RESPONSE_BYTES`` (``truncated`` says so)."""

    status_code: int
    body: str
    truncated: bool = False
    headers: dict[str, str] = field(default_factory=dict)


def validate_target_url(url: str) -> str:
    """The URL, if it is an absolute http(s) URL with a host; else PermanentProviderError. (Where it may point
    is :func:`providers.destinations.check_destination`'s question, asked at save time too.)"""
    try:
        parts = urllib.parse.urlsplit(url.strip())
    except ValueError as exc:
        raise PermanentProviderError(
            f"invalid webhook URL {url!r}: {exc}", provider_code="invalid_url"
        ) from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise PermanentProviderError(
            f"webhook URL must be http or https, not {parts.scheme or 'relative'!r}",
            provider_code="invalid_url",
        )
    if not parts.hostname:
        raise PermanentProviderError(f"webhook URL {url!r} has no host", provider_code="invalid_url")
    stripped = url.strip()  # surrounding whitespace from a form is harmless; inside the URL it is not
    if any(ch in stripped for ch in "\r\n\t "):
        raise PermanentProviderError("webhook URL contains whitespace", provider_code="invalid_url")
    return stripped


def _translate_transport(exc: httpx.HTTPError, what: str) -> ProviderError:
    # Order matters: UnsupportedProtocol and LocalProtocolError are TransportErrors too, but permanent.
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PermanentProviderError(f"{what}: unusable URL: {exc}", provider_code="invalid_url")
    if isinstance(exc, httpx.LocalProtocolError):
        return PermanentProviderError(f"{what}: malformed request: {exc}", provider_code="invalid_request")
    if isinstance(exc, httpx.TimeoutException):
        return RetryableProviderError(f"{what}: timed out: {exc}", provider_code="timeout")
    if isinstance(exc, httpx.TransportError):
        return RetryableProviderError(f"{what}: connection failed: {exc}", provider_code="connection_error")
    return RetryableProviderError(f"{what}: HTTP failure: {exc}", provider_code="http_error")


class _HttpActionBase:
    """Owns (or borrows) the httpx client and performs one capped request."""

    name = "http"

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        timeout: float = 10.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        clock: Clock | None = None,
        allow: Allowlist = NOTHING_ALLOWED,
    ) -> None:
        self._owns_client = client is None
        self.allow = allow
        self.client = client if client is not None else httpx.Client(
            timeout=timeout, follow_redirects=False, transport=PinnedTransport(allow))
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self._clock = clock

    def close(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_client:
            self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _perform(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> HttpActionResult:
        what = f"{self.name} {method} {urllib.parse.urlsplit(url).hostname}"
        try:
            check_destination(url, self.allow)
        except ValidationError as exc:
            raise PermanentProviderError(f"destination refused: {exc.fields['url'][0]}",
                                         provider_code="destination_refused") from None
        try:
            with self.client.stream(
                method, url, headers=headers, content=content, timeout=self.timeout, follow_redirects=False
            ) as response:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                # Read at most the cap and drop the rest: a target can't make us buffer gigabytes.
                for chunk in response.iter_bytes():
                    room = self.max_response_bytes - size
                    if len(chunk) > room:
                        chunks.append(chunk[:room])
                        truncated = True
                        break
                    chunks.append(chunk)
                    size += len(chunk)
                raw = b"".join(chunks)
                encoding = response.encoding or "utf-8"
                return HttpActionResult(
                    status_code=response.status_code,
                    body=raw.decode(encoding, errors="replace"),
                    truncated=truncated,
                    headers=dict(response.headers),
                )
        except httpx.HTTPError as exc:
            raise _translate_transport(exc, what) from exc
        except LookupError as exc:  # unknown charset in Content-Type
            raise PermanentProviderError(f"{what}: undecodable response: {exc}") from exc

    def _retry_after(self, result: HttpActionResult) -> float | None:
        return parse_retry_after(header(result.headers, "retry-after"), self._clock)


class WebhookSender(_HttpActionBase):
    """The generic "webhook" step: any method, headers, optional Basic/Bearer auth, a string body."""

    name = "webhook"

    def send(self, request: WebhookRequest) -> HttpActionResult:
        url = validate_target_url(request.url)
        method = request.method.upper()
        if method not in ALLOWED_METHODS:
            raise PermanentProviderError(
                f"unsupported webhook method {request.method!r}", provider_code="method"
            )
        headers = {"User-Agent": USER_AGENT}
        for name, value in request.headers.items():
            # Merge fields render into header values: a CR/LF there would smuggle headers.
            if not _HEADER_NAME.match(name) or any(ch in str(value) for ch in "\r\n\0"):
                raise PermanentProviderError(
                    f"invalid webhook header {name!r}", provider_code="invalid_header"
                )
            headers[name] = str(value)
        if isinstance(request.auth, BasicAuth):
            pair = f"{request.auth.username}:{request.auth.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        elif isinstance(request.auth, BearerAuth):
            if any(ch in request.auth.token for ch in "\r\n\0"):
                raise PermanentProviderError("invalid bearer token", provider_code="invalid_header")
            headers["Authorization"] = f"Bearer {request.auth.token}"
        content = None
        if request.body is not None and request.body != "":
            content = request.body.encode("utf-8")
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = _guess_content_type(request.body)
        result = self._perform(method, url, headers, content)
        return self._check(result, url)

    def _check(self, result: HttpActionResult, url: str) -> HttpActionResult:
        status = result.status_code
        if 200 <= status < 300:
            return result
        # Only the status and a fixed reason: the response body and headers are the target's words.
        host = urllib.parse.urlsplit(url).hostname
        if 300 <= status < 400:
            raise PermanentProviderError(
                f"webhook {host} answered {status} (a redirect, not followed); update the URL",
                provider_code=str(status),
            )
        if status in RETRYABLE_STATUSES or status >= 500:
            raise RetryableProviderError(
                f"webhook {host} answered {status} (temporary failure)",
                provider_code=str(status),
                retry_after=self._retry_after(result),
            )
        raise PermanentProviderError(
            f"webhook {host} answered {status} (request refused)", provider_code=str(status)
        )


def _guess_content_type(body: str) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


class SlackWebhookSender(_HttpActionBase):
    """Posts ``{"text": ..., "blocks": [...]}`` to a Slack incoming webhook (contract §6)."""

    name = "slack"

    def send(
        self, webhook_url: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> HttpActionResult:
        url = validate_target_url(webhook_url)
        if not text or not text.strip():
            # Slack would answer 400 no_text; text is also the notification fallback when blocks exist.
            raise PermanentProviderError("Slack message has no text", provider_code="no_text")
        payload: dict[str, Any] = {"text": text}
        if blocks:
            payload["blocks"] = blocks
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json; charset=utf-8"}
        result = self._perform("POST", url, headers, json.dumps(payload).encode("utf-8"))
        return self._check(result)

    def _check(self, result: HttpActionResult) -> HttpActionResult:
        status = result.status_code
        if 200 <= status < 300:
            return result
        body = result.body.strip()
        error = body if body in SLACK_KNOWN_ERRORS else str(status)
        if status == 429 or status >= 500:
            raise RetryableProviderError(
                f"Slack answered {status} {error}", provider_code=error, retry_after=self._retry_after(result)
            )
        hint = " (webhook is dead: disable it)" if error in SLACK_DEAD_WEBHOOK_ERRORS else ""
        raise PermanentProviderError(f"Slack answered {status} {error}{hint}", provider_code=error)
