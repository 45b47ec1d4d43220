"""Capture providers: with no credentials, email and SMS land in the outbox as captured and go
nowhere. The outbox row itself is the capture, visible in the app, the API and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from providers.base import OutgoingEmail, OutgoingSms, SendResult


class CaptureEmail:
    name = "capture"

    def send_batch(self, emails: list[OutgoingEmail]) -> list[SendResult | Exception]:
        return [outcome for _, outcome in self.send_each(emails)]

    def send_each(self, emails: list[OutgoingEmail], proceed: Callable[[OutgoingEmail], bool] | None = None,
                  ) -> Iterator[tuple[OutgoingEmail, SendResult | Exception]]:
        for e in emails:
            if proceed is None or proceed(e):
                yield e, SendResult("capture", f"capture-{e.message_id}")


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
