"""Which provider serves each channel, chosen from settings: real ones when credentials are set,
capture (email, SMS) and the sandbox (meetings) when not — so the demo runs offline."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from automations.settings import Settings
from providers.capture import CaptureEmail, CaptureSms
from providers.sandbox_meetings import SandboxMeetings


def email_sender(settings: Settings, clock=None):
    if not settings.smtp_url:
        return CaptureEmail()
    from providers.smtp import SmtpEmailSender

    return SmtpEmailSender(settings.smtp_url, default_from_email=settings.from_email, clock=clock)


def sms_sender(settings: Settings, clock=None):
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        return CaptureSms()
    from providers.twilio_sms import TwilioSmsSender

    return TwilioSmsSender(
        settings.twilio_account_sid, settings.twilio_auth_token, from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid, base_url=settings.twilio_base_url,
        status_callback=f"{settings.public_url}/hooks/twilio/status", clock=clock,
    )


def voice_caller(settings: Settings, clock=None):
    """Calls and voicemail drops: Twilio Voice with the same credentials as SMS, else capture."""
    if not (settings.twilio_account_sid and settings.twilio_auth_token):
        from providers.capture import CaptureVoice

        return CaptureVoice()
    from providers.twilio_voice import TwilioVoiceCaller

    return TwilioVoiceCaller(
        settings.twilio_account_sid, settings.twilio_auth_token, from_number=settings.twilio_from_number,
        base_url=settings.twilio_base_url, status_callback=f"{settings.public_url}/hooks/twilio/status", clock=clock,
    )


def http_senders():
    """The webhook and Slack step senders (their URLs come from each step, so there is nothing to configure)."""
    from providers.http_actions import SlackWebhookSender, WebhookSender

    return WebhookSender(), SlackWebhookSender()


def meeting_provider(settings: Settings, factory: sessionmaker[Session], clock=None):
    """Zoom (each host's own account) when ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET are set; the clearly
    labelled offline sandbox otherwise."""
    if not (settings.zoom_client_id and settings.zoom_client_secret):
        return SandboxMeetings()
    from providers.zoom_meetings import ZoomMeetings

    return ZoomMeetings.from_settings(settings, factory, clock=clock)


def build(settings: Settings, factory: sessionmaker[Session], clock=None):
    from automations.engine.runtime import Providers

    webhook, slack = http_senders()
    return Providers(email=email_sender(settings, clock), sms=sms_sender(settings, clock),
                     meetings=meeting_provider(settings, factory, clock=clock),
                     voice=voice_caller(settings, clock), webhook=webhook, slack=slack)
