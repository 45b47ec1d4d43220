"""Plumbing shared by the OAuth + JSON REST clients (Zoom, Google): PKCE, the ``httpx.Client`` they own or
borrow, transport errors turned into the provider's own error classes, JSON bodies and ``Retry-After``.

A client subclasses :class:`OAuthHttpClient`, names itself in ``provider`` and sets ``unavailable_error``
(retryable; takes ``maybe_applied``) and ``rejected_error`` (permanent) to its own error classes, so every
failure still reaches the caller as that provider's error and httpx exceptions never escape.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Self

import httpx

from automations.clock import Clock, SystemClock
from providers.headers import parse_retry_after

#: The longest a provider's Retry-After may park work: a nonsense value must neither overflow timedelta
#: nor park the work for years.
RETRY_AFTER_MAX = timedelta(days=2)


def make_code_verifier() -> str:
    """A fresh PKCE code verifier (43 characters from the unreserved set, RFC 7636 §4.1)."""
    return secrets.token_urlsafe(32)


def code_challenge_s256(verifier: str) -> str:
    """The S256 challenge for ``verifier``: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def json_or_empty(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object, or ``{}`` when the body is not one (error bodies are read best-effort)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


class OAuthHttpClient:
    """Base of a provider client: ``http`` (closed only when this object created it), ``clock``, and the
    request/response helpers that differ between providers only in names and error classes."""

    provider: ClassVar[str]
    unavailable_error: ClassVar[Callable[..., Exception]]
    rejected_error: ClassVar[Callable[..., Exception]]

    client_id: str
    redirect_uri: str
    api_base: str
    oauth_base: str
    http: httpx.Client
    clock: Clock
    _owns_http: bool

    def _init_client(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        api_base: str,
        oauth_base: str,
        clock: Clock | None,
        http: httpx.Client | None,
        timeout: float,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret  # underscore: keep it out of casual logging of vars(client)
        self.redirect_uri = redirect_uri
        self.api_base = api_base.rstrip("/")
        self.oauth_base = oauth_base.rstrip("/")
        self.clock = clock or SystemClock()
        self._owns_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, api_base={self.api_base!r})"

    def close(self) -> None:
        """Close the ``httpx.Client`` if this object created it (an injected one belongs to the caller)."""
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _api(
        self,
        method: str,
        path: str,
        access_token: str,
        *,
        op: str,
        json: Any = None,
        params: Any = None,
        extra_headers: Mapping[str, str] | None = None,
        **error_kw: Any,
    ) -> httpx.Response:
        """A REST call with the user's bearer token; a failure answer raises :meth:`_api_error` (which gets
        ``error_kw``, e.g. whether a 404 means "no such meeting")."""
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        headers.update(extra_headers or {})
        response = self._send(
            method, f"{self.api_base}{path}", op=op, headers=headers, json=json, params=params
        )
        if response.is_success:
            return response
        raise self._api_error(response, op, **error_kw)

    def _api_error(self, response: httpx.Response, op: str, **kw: Any) -> Exception:
        raise NotImplementedError

    def _api_json(self, method: str, path: str, access_token: str, **kw: Any) -> dict[str, Any]:
        response = self._api(method, path, access_token, **kw)
        return self._json_object(response, kw["op"])

    def _send(self, method: str, url: str, *, op: str, **kw: Any) -> httpx.Response:
        name = self.provider
        try:
            return self.http.request(method, url, **kw)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached the provider: safe to retry anything, even a create.
            raise self.unavailable_error(f"{name} {op}: cannot connect ({exc!r})", maybe_applied=False) from exc
        except httpx.TimeoutException as exc:
            raise self.unavailable_error(f"{name} {op}: timed out ({exc!r})") from exc
        except httpx.HTTPError as exc:
            raise self.unavailable_error(f"{name} {op}: transport error ({exc!r})") from exc
        except httpx.InvalidURL as exc:  # not an HTTPError: a misconfigured base URL, permanent
            raise self.rejected_error(f"{name} {op}: invalid URL ({exc})") from exc

    def _json_object(self, response: httpx.Response, op: str) -> dict[str, Any]:
        """A success body as a JSON object; anything else is the provider's "unavailable" (retry later)."""
        try:
            data = response.json()
        except ValueError as exc:
            raise self.unavailable_error(
                f"{self.provider} {op}: HTTP {response.status_code} with a non-JSON body") from exc
        if not isinstance(data, dict):
            raise self.unavailable_error(
                f"{self.provider} {op}: HTTP {response.status_code} with a non-object JSON body")
        return data

    def _retry_at(self, response: httpx.Response) -> tuple[datetime, datetime | None]:
        """Now, and when the response's ``Retry-After`` says to come back (capped at
        :data:`RETRY_AFTER_MAX`; None when absent or unreadable)."""
        now = self.clock.now()
        wait = parse_retry_after(response.headers.get("retry-after"), self.clock)
        if wait is None:
            return now, None
        return now, now + timedelta(seconds=min(wait, RETRY_AFTER_MAX.total_seconds()))
