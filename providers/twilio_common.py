"""What the Twilio SMS and Voice senders share: the client factory, the base-URL seam and the error mapping.

Contract: ``shared/contracts/EXTERNAL_APIS.md`` §2.2 (error JSON), §2.3 (codes that matter), §2.8 (pointing
the official client elsewhere), §3.1 (call create errors).

The official ``twilio`` package has no base-URL setting (§2.8), so every request goes through
:class:`RoutingHttpClient`, an ``HttpClient`` that rewrites scheme and host to ``base_url`` (mechanism A of
§2.8) and delegates to an inner client (``TwilioHttpClient`` by default, or any injected one). It also keeps
the last response's headers per thread, because ``TwilioRestException`` drops them and ``Retry-After`` lives
there.
"""

from __future__ import annotations

import os
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from automations.clock import Clock
from automations.errors import PermanentProviderError, ProviderError, RetryableProviderError
from providers.headers import header, parse_retry_after

TWILIO_API_BASE_URL = "https://api.twilio.com"
T = TypeVar("T")

#: What a Twilio call can raise that is not a bug of ours: senders catch exactly these and translate them.
TWILIO_CALL_ERRORS = (TwilioException, requests.exceptions.RequestException, OSError)

#: Synchronous codes that mean "try again later" although Twilio answers them with a 4xx (§2.3).
RETRYABLE_CODES = frozenset(
    {
        20429,  # too many concurrent requests: not processed, safe to retry
        21611,  # sender's queue full
        30001,  # queue overflow (normally asynchronous, mapped the same if it ever comes back synchronously)
    }
)
#: The recipient replied STOP: never retry; only START/UNSTOP from them clears it (§2.3, §2.6).
OPTED_OUT_CODES = frozenset({21610})
#: The destination number itself is bad: mark the contact's number invalid rather than retrying.
INVALID_RECIPIENT_CODES = frozenset({21211, 21214, 21217, 21612, 21614, 30005, 30006})
#: Our own setup is wrong (credentials, sender, geo permissions): alert someone, don't retry.
CONFIG_CODES = frozenset({20003, 21210, 21212, 21215, 21408, 21606, 21608})
#: Asynchronous delivery errors (status callbacks, §2.3) worth one more try later.
RETRYABLE_DELIVERY_CODES = frozenset({30001, 30003, 30008})

# Twilio message status -> our MessageStatus (automations.store.states). Everything before a carrier receipt is
# "sent": the provider has accepted it and we are waiting for callbacks.
_MESSAGE_STATUS = {
    "accepted": "sent",
    "scheduled": "sent",
    "queued": "sent",
    "sending": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "partially_delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "cancelled",
}
# Twilio call status -> MessageStatus: an answered call is the voice equivalent of "delivered".
_CALL_STATUS = {
    "queued": "sent",
    "initiated": "sent",
    "ringing": "sent",
    "in-progress": "delivered",
    "answered": "delivered",
    "completed": "delivered",
    "busy": "undelivered",
    "no-answer": "undelivered",
    "failed": "failed",
    "canceled": "cancelled",
}
# Ordering for "never move a message backwards" when callbacks arrive late or twice (§2.5).
_STATUS_RANK = {"pending": 0, "sending": 1, "sent": 2, "undelivered": 3, "failed": 3, "delivered": 4}


def map_message_status(twilio_status: str | None) -> str:
    """Our MessageStatus for a Twilio message status (unknown values count as ``sent``)."""
    return _MESSAGE_STATUS.get((twilio_status or "").lower(), "sent")


def map_call_status(twilio_status: str | None) -> str:
    """Our MessageStatus for a Twilio call status (unknown values count as ``sent``)."""
    return _CALL_STATUS.get((twilio_status or "").lower(), "sent")


def status_moves_forward(current: str, new: str) -> bool:
    """Whether a callback's status may replace the recorded one (callbacks can arrive out of order)."""
    if current == "cancelled":  # withdrawn on our side: a late receipt does not resurrect it
        return False
    return _STATUS_RANK.get(new, 0) > _STATUS_RANK.get(current, 0)


def classify_code(code: int | str | None) -> str:
    """A coarse reason for a Twilio error code: ``opted_out``, ``invalid_recipient``, ``config``,
    ``retryable`` or ``other``. Delivery uses it to decide what to mark on the contact."""
    try:
        number = int(code)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "other"
    if number in OPTED_OUT_CODES:
        return "opted_out"
    if number in INVALID_RECIPIENT_CODES:
        return "invalid_recipient"
    if number in CONFIG_CODES:
        return "config"
    if number in RETRYABLE_CODES or number in RETRYABLE_DELIVERY_CODES:
        return "retryable"
    return "other"


def default_http_client(base_url: str, timeout: float) -> TwilioHttpClient:
    """The official client's HTTP client, with the environment's proxy and CA-bundle settings read once, here.

    ``requests`` re-reads them on every call while its session trusts the environment (the proxy variables,
    ``no_proxy`` matching, ``REQUESTS_CA_BUNDLE``): about 8 % of a worker's CPU when it sends texts. The same
    settings are applied, once; a change to the environment takes effect at the next start."""
    client = TwilioHttpClient(timeout=timeout, proxy=requests.utils.get_environ_proxies(base_url) or None)
    if client.session is not None:
        client.session.trust_env = False
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            client.session.verify = bundle
    return client


class RoutingHttpClient(HttpClient):
    """Sends every Twilio API call to ``base_url`` instead of ``*.twilio.com`` (§2.8 mechanism A).

    Wraps ``inner`` (default: :func:`default_http_client`) so an injected client keeps working,
    and remembers the last response per thread so error mapping can read ``Retry-After``.
    """

    def __init__(
        self, base_url: str = TWILIO_API_BASE_URL, inner: HttpClient | None = None, timeout: float = 10.0
    ) -> None:
        super().__init__(logger=getattr(inner, "logger", None), is_async=False, timeout=timeout)
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Twilio base URL must be http(s)://host[:port], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._rewrite = self.base_url != TWILIO_API_BASE_URL
        # The default client has no timeout at all (§2.8): always give it one.
        self.inner = inner if inner is not None else default_http_client(self.base_url, timeout)
        self._local = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if self._rewrite:
            parts = urllib.parse.urlsplit(url)
            url = self.base_url + parts.path + (("?" + parts.query) if parts.query else "")
        self._local.last_response = None
        response = self.inner.request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout if timeout is not None else self.timeout,
            allow_redirects=allow_redirects,
        )
        self._local.last_response = response
        return response

    def last_response_headers(self) -> Mapping[str, str]:
        """Headers of this thread's most recent response (empty when there was none)."""
        response = getattr(self._local, "last_response", None)
        headers = getattr(response, "headers", None)
        return headers if headers is not None else {}


def make_client(
    account_sid: str,
    auth_token: str,
    *,
    base_url: str = TWILIO_API_BASE_URL,
    http_client: HttpClient | None = None,
    timeout: float = 10.0,
) -> tuple[Client, RoutingHttpClient]:
    """A ``twilio.rest.Client`` whose requests go through a :class:`RoutingHttpClient` (returned too)."""
    if not account_sid or not auth_token:
        # Client() would silently fall back to TWILIO_* environment variables; we want explicit config.
        raise ValueError("Twilio account_sid and auth_token are required")
    router = RoutingHttpClient(base_url, inner=http_client, timeout=timeout)
    return Client(account_sid, auth_token, http_client=router), router


class TwilioSender:
    """Base of the Twilio senders: the routed official client, the default sender number and status-callback
    URL, and every Twilio call made through :meth:`_twilio` so failures reach the caller as our errors."""

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        status_callback: str | None = None,
        base_url: str = TWILIO_API_BASE_URL,
        http_client: HttpClient | None = None,
        timeout: float = 10.0,
        clock: Clock | None = None,
    ) -> None:
        self.client, self._router = make_client(
            account_sid, auth_token, base_url=base_url, http_client=http_client, timeout=timeout
        )
        self.from_number = from_number
        self.status_callback = status_callback
        self._clock = clock

    def _twilio(self, call: Callable[..., T], **kwargs: Any) -> T:
        """``call(**kwargs)`` with anything Twilio raises translated (:func:`translate_twilio_error`)."""
        try:
            return call(**kwargs)
        except TWILIO_CALL_ERRORS as exc:
            raise translate_twilio_error(exc, self._router.last_response_headers(), self._clock) from exc


def translate_twilio_error(
    exc: BaseException, response_headers: Mapping[str, str] | None = None, clock: Clock | None = None
) -> ProviderError:
    """Map anything the twilio client raised to our ProviderError types (§2.3).

    - codes 20429/21611/30001, HTTP 429 and 5xx: retryable, ``retry_after`` from ``Retry-After`` if sent;
    - every other 4xx: permanent, ``provider_code`` = the Twilio code (21610 = the recipient opted out);
    - connection errors and timeouts: retryable;
    - other library errors (missing credentials, bad arguments): permanent.
    Call it inside ``except`` and ``raise translate_twilio_error(exc, ...) from exc``.
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(getattr(exc, "status", 0) or 0)
        code = getattr(exc, "code", None)
        provider_code = str(code) if code is not None else str(status)
        message = getattr(exc, "msg", None) or getattr(exc, "detail", None) or getattr(exc, "title", "")
        text = f"Twilio {status} error {provider_code}: {message}".strip()
        retry_after = parse_retry_after(header(response_headers, "Retry-After"), clock)
        try:
            numeric = int(code) if code is not None else None
        except (TypeError, ValueError):
            numeric = None
        if status == 429 or status >= 500 or numeric in RETRYABLE_CODES:
            return RetryableProviderError(text, provider_code=provider_code, retry_after=retry_after)
        if numeric in OPTED_OUT_CODES:
            text += " (recipient opted out with STOP; only START/UNSTOP from them clears it)"
        return PermanentProviderError(text, provider_code=provider_code)
    if isinstance(exc, requests.exceptions.Timeout | TimeoutError):
        # A read timeout may mean Twilio created the message anyway; delivery decides whether to risk a
        # duplicate. The code says which kind it was.
        kind = "connect_timeout" if isinstance(exc, requests.exceptions.ConnectTimeout) else "timeout"
        return RetryableProviderError(f"Twilio request timed out: {exc}", provider_code=kind)
    if isinstance(exc, requests.exceptions.ConnectionError | ConnectionError):
        return RetryableProviderError(f"cannot reach Twilio: {exc}", provider_code="connection_error")
    if isinstance(exc, requests.exceptions.RequestException | OSError):
        return RetryableProviderError(f"Twilio transport error: {exc}", provider_code="transport_error")
    # TwilioException itself: missing credentials, unusable arguments. Retrying cannot help.
    return PermanentProviderError(f"Twilio client error: {exc}", provider_code="client_error")
