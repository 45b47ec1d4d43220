"""The provider seam: what the engine hands a provider and what it gets back.

Delivery (``automations/delivery.py``) renders an outbox row into one of these envelopes and gives
it to the sender registered for its channel. Senders raise ``RetryableProviderError`` or
``PermanentProviderError`` (``automations.errors``) and never anything vendor-specific.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from automations.errors import ProviderError


@dataclass(frozen=True)
class OutgoingEmail:
    message_id: str  # our outbox id; also the idempotency key seen by the provider where possible
    to: str
    subject: str
    text: str
    html: str | None = None
    from_email: str | None = None
    from_name: str | None = None
    reply_to: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutgoingSms:
    message_id: str
    to: str  # E.164
    body: str
    from_number: str | None = None
    messaging_service_sid: str | None = None
    media_urls: tuple[str, ...] = ()
    status_callback: str | None = None


@dataclass(frozen=True)
class SendResult:
    provider: str  # capture | smtp | twilio
    provider_id: str  # Message-ID, Twilio SID, capture id
    status: str = "sent"  # the MessageStatus to record
    detail: dict = field(default_factory=dict)


class EmailSender(Protocol):
    name: str

    def send_batch(self, emails: list[OutgoingEmail]) -> list[SendResult | Exception]:
        """Send several emails (one connection where the transport allows); one result per email,
        in order: a SendResult, or the ProviderError that email met."""
        ...


class SmsSender(Protocol):
    name: str

    def send(self, sms: OutgoingSms) -> SendResult: ...


@dataclass(frozen=True)
class MeetingRequest:
    host_user_id: str
    topic: str
    start_at: datetime  # aware UTC
    duration_minutes: int
    timezone: str
    agenda: str = ""


@dataclass(frozen=True)
class MeetingInfo:
    external_id: str
    join_url: str


class MeetingProvider(Protocol):
    """Creates the online meeting behind an appointment (Zoom, or the offline sandbox)."""

    name: str

    def create(self, request: MeetingRequest) -> MeetingInfo: ...

    def update(self, host_user_id: str, external_id: str, request: MeetingRequest) -> None: ...

    def delete(self, host_user_id: str, external_id: str) -> None: ...

    # Optional: ``ensure(host_user_id, external_id, request) -> MeetingInfo`` checks that a meeting still
    # exists and returns its link, raising ``MeetingNotFound`` when it is gone (the job then recreates it).


# -- what a meeting provider may raise, beyond RetryableProviderError / PermanentProviderError --------
#
# ``automations.zoom.meeting_jobs`` maps each to a lifecycle decision; a provider translates its vendor's
# errors into these (``providers/zoom_meetings.py``), so the job never sees anything vendor-specific.


class MeetingDeferred(ProviderError):
    """Not now: try again at ``retry_at`` (aware UTC). Not a failure: the job's attempts are not spent."""

    code = "meeting_deferred"

    def __init__(self, message: str, *, retry_at: datetime, retry_after: float | None = None, **kw) -> None:
        super().__init__(message, retryable=True, retry_after=retry_after, **kw)
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

    def __init__(self, message: str, **kw) -> None:
        super().__init__(message, retryable=False, **kw)


class MeetingConnectionBroken(MeetingHostNotConnected):
    """The host's credential was refused for good (``invalid_grant``, a revoked or rotated-away token): mark
    the connection broken and alert the host, who must reconnect."""

    code = "meeting_connection_broken"

    def __init__(self, message: str, *, host_user_id: str, **kw) -> None:
        super().__init__(message, **kw)
        self.host_user_id = host_user_id


class MeetingNotFound(ProviderError):
    """The meeting no longer exists at the provider (Zoom 404 / 3001): recreate it if it is still needed."""

    code = "meeting_not_found"

    def __init__(self, message: str, **kw) -> None:
        super().__init__(message, retryable=False, **kw)
