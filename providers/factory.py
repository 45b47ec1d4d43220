"""Which provider serves each channel, chosen from settings: real ones when credentials are set,
capture (email, SMS) and the sandbox (meetings) when not — so the demo runs offline."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from automations.settings import Settings
from providers.capture import CaptureEmail, CaptureSms
from providers.sandbox_meetings import SandboxMeetings


def email_sender(settings: Settings):
    if not settings.smtp_url:
        return CaptureEmail()
    from providers.smtp import SmtpEmailSender

    return SmtpEmailSender(settings.smtp_url, default_from_email=settings.from_email)


def sms_sender(settings: Settings):
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return CaptureSms()
    from providers.twilio_sms import TwilioSmsSender

    return TwilioSmsSender(
        settings.twilio_account_sid, settings.twilio_auth_token, from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid, base_url=settings.twilio_base_url,
        status_callback=f"{settings.public_url}/hooks/twilio/status",
    )


def meeting_provider(settings: Settings, factory: sessionmaker[Session]):
    """The sandbox until the Zoom integration is wired in (issue: Zoom meeting links)."""
    return SandboxMeetings()


def build(settings: Settings, factory: sessionmaker[Session]):
    from automations.runtime import Providers

    return Providers(email=email_sender(settings), sms=sms_sender(settings), meetings=meeting_provider(settings, factory))
