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


class CaptureVoice:
    """Calls and voicemail drops with no Twilio credentials: recorded in the outbox, nobody rings."""

    name = "capture"

    def call(self, call) -> SendResult:
        return SendResult("capture", f"capture-{call.message_id}")

    def voicemail_drop(self, vm) -> SendResult:
        return SendResult("capture", f"capture-{vm.message_id}")
