"""Twilio Programmable Messaging: the real ``SmsSender`` (contract ``EXTERNAL_APIS.md`` §2).

One ``send`` is one ``POST /2010-04-01/Accounts/{sid}/Messages.json`` through the official ``twilio`` client,
routed to an injectable base URL (§2.8). Errors come back as our ProviderError types (mapping in
``providers.twilio_common``); the returned SendResult carries the Message SID for status callbacks.
"""

from __future__ import annotations

from typing import Any

from automations.errors import PermanentProviderError
from providers.base import OutgoingSms, SendResult
from providers.twilio_common import (
    TwilioSender,
    map_message_status,
)

MAX_BODY_CHARS = 1600  # Twilio rejects longer bodies with 21617 (§2.3)
MAX_MEDIA_URLS = 10  # MediaUrl may repeat up to 10 times (§2.1)


class TwilioSmsSender(TwilioSender):
    """Sends SMS/MMS through Twilio.

    Sender: ``sms.from_number`` / ``sms.messaging_service_sid`` if set, else the constructor defaults; a
    Messaging Service wins over a From number when both are known (Twilio then picks from its pool).
    ``status_callback`` is the default delivery-receipt URL (``sms.status_callback`` overrides it).
    """

    def __init__(self, account_sid: str, auth_token: str, *, messaging_service_sid: str | None = None,
                 validity_period: int | None = None, **kw: Any) -> None:
        """``kw``: the :class:`TwilioSender` settings (from_number, status_callback, base_url, ...)."""
        super().__init__(account_sid, auth_token, **kw)
        self.messaging_service_sid = messaging_service_sid
        self.validity_period = validity_period
        # The client imports its Messages API on first use (~60 ms on a 2-core machine): do it now, at start-up,
        # not in the first reminder after a worker starts.
        self._messages = self.client.messages

    def send(self, sms: OutgoingSms) -> SendResult:
        kwargs = self._create_kwargs(sms)
        message = self._twilio(self._messages.create, **kwargs)
        twilio_status = getattr(message, "status", None)
        detail = {
            "twilio_status": twilio_status,
            "from": getattr(message, "from_", None),
            "num_segments": getattr(message, "num_segments", None),
            "num_media": getattr(message, "num_media", None),
            "messaging_service_sid": getattr(message, "messaging_service_sid", None),
        }
        return SendResult(
            provider=self.name,
            provider_id=message.sid,
            status=map_message_status(twilio_status),
            detail={k: v for k, v in detail.items() if v is not None},
        )

    def _create_kwargs(self, sms: OutgoingSms) -> dict:
        # Checks Twilio would make too, done here so a doomed request never leaves the building.
        if not sms.to:
            raise PermanentProviderError("SMS has no recipient number", provider_code="21604")
        if not sms.body and not sms.media_urls:
            raise PermanentProviderError("SMS has neither body nor media", provider_code="21602")
        if len(sms.body) > MAX_BODY_CHARS:
            raise PermanentProviderError(
                f"SMS body is {len(sms.body)} characters; Twilio allows {MAX_BODY_CHARS}",
                provider_code="21617",
            )
        if len(sms.media_urls) > MAX_MEDIA_URLS:
            raise PermanentProviderError(
                f"at most {MAX_MEDIA_URLS} media URLs per MMS", provider_code="21623"
            )
        kwargs: dict = {"to": sms.to}
        service = sms.messaging_service_sid or (None if sms.from_number else self.messaging_service_sid)
        sender = sms.from_number or self.from_number
        if service:
            kwargs["messaging_service_sid"] = service
        elif sender:
            kwargs["from_"] = sender
        else:
            raise PermanentProviderError(
                "no From number or Messaging Service configured for SMS", provider_code="21603"
            )
        if sms.body:
            kwargs["body"] = sms.body
        if sms.media_urls:
            kwargs["media_url"] = list(sms.media_urls)
        callback = sms.status_callback or self.status_callback
        if callback:
            kwargs["status_callback"] = callback
        if self.validity_period:
            kwargs["validity_period"] = self.validity_period
        return kwargs
