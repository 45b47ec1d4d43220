"""The provider seam: what the engine hands a provider and what it gets back.

Delivery (``automations/outbox/delivery.py``) renders an outbox row into one of these envelopes and gives
it to the sender registered for its channel. Senders and meeting providers raise the provider errors of
``automations.errors`` (retryable, permanent, the meeting outcomes) and never anything vendor-specific.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


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

    def send_each(self, emails: list[OutgoingEmail], proceed: Callable[[OutgoingEmail], bool] | None = None,
                  ) -> Iterator[tuple[OutgoingEmail, SendResult | Exception]]:
        """Like ``send_batch``, but asks ``proceed(email)`` just before each one (skipping it on False) and
        yields each outcome as soon as it is known."""
        ...


class SmsSender(Protocol):
    name: str

    def send(self, sms: OutgoingSms) -> SendResult: ...


class VoiceCaller(Protocol):
    """Calls and voicemail drops (``providers.twilio_voice`` envelopes)."""

    name: str

    def call(self, call) -> SendResult: ...

    def voicemail_drop(self, vm) -> SendResult: ...


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
