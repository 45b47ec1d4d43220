"""Capture providers: with no credentials, email and SMS land in the outbox as captured and go
nowhere. The outbox row itself is the capture, visible in the app, the API and the CLI."""

from __future__ import annotations

from providers.base import OutgoingEmail, OutgoingSms, SendResult


class CaptureEmail:
    name = "capture"

    def send_batch(self, emails: list[OutgoingEmail]) -> list[SendResult | Exception]:
        return [SendResult("capture", f"capture-{e.message_id}") for e in emails]


class CaptureSms:
    name = "capture"

    def send(self, sms: OutgoingSms) -> SendResult:
        return SendResult("capture", f"capture-{sms.message_id}")
