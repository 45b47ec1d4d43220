"""Every error Punctual raises on purpose, in one place.

Vendor exceptions (httpx, twilio, SQLAlchemy) are translated into these at the boundary with
``raise ... from``, so callers only ever catch our types.

Provider failures form one tree::

    ProviderError (retryable?, provider_code, retry_after)
    ├── RetryableProviderError        timeouts, 5xx, 429: delivery tries again (RetryPolicy)
    ├── PermanentProviderError        4xx, invalid number, opted out: fail now
    ├── MeetingDeferred               not now, at retry_at
    │   ├── MeetingRateLimited        a 429 with its Retry-After
    │   └── MeetingDailyLimit         the host's daily budget is spent (Zoom: 100/user/UTC day)
    ├── MeetingHostNotConnected       no usable connection: the fallback policy applies
    │   └── MeetingConnectionBroken   the credential was refused for good: the host must reconnect
    ├── MeetingNotFound               gone at the provider: recreate if still needed
    └── ZoomError (providers.zoom_client)  Zoom's own answers; each that means one of the meeting outcomes
                                      is also that class (ZoomRateLimited is a MeetingRateLimited,
                                      ZoomDailyLimitExceeded a MeetingDailyLimit, ZoomConnectionBroken a
                                      MeetingConnectionBroken, ZoomMeetingNotFound a MeetingNotFound);
                                      ``automations.zoom.provider`` adds the host and the budget Each carries the HTTP status the web layer
answers with, and validation errors carry field paths (``steps[2].delay.amount``) with reasons.
"""

from __future__ import annotations

from datetime import datetime


class PunctualError(Exception):
    """Base for all of Punctual's own errors."""

    status_code = 500
    code = "error"

    def __init__(self, message: str = "", *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def to_dict(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class ValidationError(PunctualError):
    """Input that breaks a rule; ``fields`` maps a JSON path to its reasons."""

    status_code = 422
    code = "validation_error"

    @classmethod
    def single(cls, path: str, reason: str) -> ValidationError:
        return cls(f"{path}: {reason}", fields={path: [reason]})


class BadRequest(PunctualError):
    status_code = 400
    code = "bad_request"


class NotFound(PunctualError):
    status_code = 404
    code = "not_found"


class Conflict(PunctualError):
    """The request is well formed but clashes with current state (slot full, already connected)."""

    status_code = 409
    code = "conflict"


class Unauthorized(PunctualError):
    status_code = 401
    code = "unauthorized"


class Forbidden(PunctualError):
    status_code = 403
    code = "forbidden"


class UnknownType(PunctualError):
    """A registry was asked for a step or trigger type it does not hold."""

    status_code = 422
    code = "unknown_type"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"unknown {kind} type {name!r}")
        self.kind = kind
        self.name = name


class DuplicateType(PunctualError):
    """Two modules tried to register the same type name."""

    code = "duplicate_type"


class ProviderError(PunctualError):
    """A provider call failed. ``retryable`` says whether delivery may try again (each kind has a default)."""

    status_code = 502
    code = "provider_error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = self.default_retryable if retryable is None else retryable
        self.provider_code = provider_code
        self.retry_after = retry_after


class RetryableProviderError(ProviderError):
    def __init__(self, message: str, **kw) -> None:
        super().__init__(message, retryable=True, **kw)


class PermanentProviderError(ProviderError):
    def __init__(self, message: str, **kw) -> None:
        super().__init__(message, retryable=False, **kw)


class StepLimitExceeded(PunctualError):
    """An enrollment ran too many steps without waiting: almost surely a goto loop."""

    code = "step_limit"


class MeetingDeferred(ProviderError):
    """Not now: try again at ``retry_at`` (aware UTC). Not a failure: the job's attempts are not spent."""

    code = "meeting_deferred"
    default_retryable = True

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class MeetingRateLimited(MeetingDeferred):
    """The provider said 429: wait until ``retry_at`` (its Retry-After)."""

    code = "meeting_rate_limited"


class MeetingDailyLimit(MeetingDeferred):
    """The host's daily request budget is spent (Zoom: 100 per user per UTC day): defer to ``retry_at``
    (the next 00:00 UTC) and tell the host."""

    code = "meeting_daily_limit"


class MeetingHostNotConnected(ProviderError):
    """The host has no usable connection to the provider (never connected, disconnected, broken): a
    permanent failure; messages then follow the workflow's fallback policy."""

    code = "meeting_host_not_connected"


class MeetingConnectionBroken(MeetingHostNotConnected):
    """The host's credential was refused for good (``invalid_grant``, a revoked or rotated-away token): mark
    the connection broken and alert the host, who must reconnect."""

    code = "meeting_connection_broken"

    def __init__(self, message: str, *, host_user_id: str | None = None, **kw) -> None:
        super().__init__(message, **kw)
        self.host_user_id = host_user_id


class MeetingNotFound(ProviderError):
    """The meeting no longer exists at the provider (Zoom 404 / 3001): recreate it if it is still needed."""

    code = "meeting_not_found"


class ConfigurationError(PunctualError):
    """A setting has a value Punctual cannot run with: refuse to start, naming the variable and the reason."""

    code = "configuration_error"

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable} {reason}")
        self.variable = variable
        self.reason = reason
