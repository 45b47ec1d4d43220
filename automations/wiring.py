"""The composition root: settings in, the typed provider bag and the runtime out.

Real clients where credentials are set (SMTP, Twilio, each host's Zoom), capture senders and the meeting
sandbox where not, so the demo runs offline. The CLI and ``web.app.create_app`` build through here; nothing
below this layer chooses a provider or reads the environment.
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from automations.clock import Clock
from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.zoom.provider import ZoomMeetings
from providers.bag import Providers
from providers.base import EmailSender, MeetingProvider, SmsSender, VoiceCaller
from providers.capture import CaptureEmail, CaptureSms, CaptureVoice
from providers.destinations import Allowlist
from providers.http_actions import SlackWebhookSender, WebhookSender
from providers.sandbox_meetings import SandboxMeetings
from providers.smtp import SmtpEmailSender
from providers.twilio_sms import TwilioSmsSender
from providers.twilio_voice import TwilioVoiceCaller
from providers.zoom_meetings import zoom_configured


def _twilio_credentials(settings: Settings) -> tuple[str, str] | None:
    """(account SID, auth token) when both are set."""
    if settings.twilio_account_sid and settings.twilio_auth_token:
        return settings.twilio_account_sid, settings.twilio_auth_token
    return None


def _status_callback(settings: Settings) -> str:
    return f"{settings.public_url}/hooks/twilio/status"


def email_sender(settings: Settings, clock: Clock | None = None) -> EmailSender:
    if not settings.smtp_url:
        return CaptureEmail()
    return SmtpEmailSender(settings.smtp_url, default_from_email=settings.from_email, clock=clock)


def sms_sender(settings: Settings, clock: Clock | None = None) -> SmsSender:
    credentials = _twilio_credentials(settings)
    if credentials is None:
        return CaptureSms()
    return TwilioSmsSender(
        *credentials, from_number=settings.twilio_from_number,
        messaging_service_sid=settings.twilio_messaging_service_sid, base_url=settings.twilio_base_url,
        status_callback=_status_callback(settings), clock=clock,
    )


def voice_caller(settings: Settings, clock: Clock | None = None) -> VoiceCaller:
    """Calls and voicemail drops: Twilio Voice with the same credentials as SMS, else capture."""
    credentials = _twilio_credentials(settings)
    if credentials is None:
        return CaptureVoice()
    return TwilioVoiceCaller(
        *credentials, from_number=settings.twilio_from_number,
        base_url=settings.twilio_base_url, status_callback=_status_callback(settings), clock=clock,
    )


def meeting_provider(settings: Settings, factory: sessionmaker[Session], clock: Clock | None = None) -> MeetingProvider:
    """Zoom (each host's own account) when ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET are set; the clearly
    labelled offline sandbox otherwise."""
    if not zoom_configured(settings):
        return SandboxMeetings()
    return ZoomMeetings.from_settings(settings, factory, clock=clock)


def build_providers(settings: Settings, factory: sessionmaker[Session], clock: Clock | None = None) -> Providers:
    allow = Allowlist.parse(settings.outbound_allow)
    return Providers(
        email=email_sender(settings, clock), sms=sms_sender(settings, clock), voice=voice_caller(settings, clock),
        webhook=WebhookSender(allow=allow, clock=clock), slack=SlackWebhookSender(allow=allow, clock=clock),
        meetings=meeting_provider(settings, factory, clock), default_from_email=settings.from_email,
        public_url=settings.public_url, secret_key=settings.secret_key,
    )


def build_runtime(settings: Settings, factory: sessionmaker[Session], *, clock: Clock | None = None,
                  owner: str | None = None) -> Runtime:
    return Runtime(factory, clock=clock, providers=build_providers(settings, factory, clock), settings=settings,
                   owner=owner)
