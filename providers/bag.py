"""The one typed bag of outside-world clients the engine works with, plus what envelopes need from the
deployment (default sender address, public URL, the key that signs unsubscribe links).

Built once at the composition root (``automations.wiring.build_providers``, from settings) and passed to the
runtime and the app; the defaults are the offline ones (capture senders, the meeting sandbox), which is what
tests and the demo use unless they hand in real clients.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from providers.base import EmailSender, MeetingProvider, SmsSender, VoiceCaller
from providers.capture import CaptureEmail, CaptureSms, CaptureVoice
from providers.http_actions import SlackWebhookSender, WebhookSender
from providers.sandbox_meetings import SandboxMeetings


@dataclass
class Providers:
    email: EmailSender = field(default_factory=CaptureEmail)
    sms: SmsSender = field(default_factory=CaptureSms)
    #: Calls and voicemail drops (Twilio Voice, or capture).
    voice: VoiceCaller = field(default_factory=CaptureVoice)
    webhook: WebhookSender = field(default_factory=WebhookSender)
    slack: SlackWebhookSender = field(default_factory=SlackWebhookSender)
    meetings: MeetingProvider = field(default_factory=SandboxMeetings)
    #: Google Calendar (``providers.google_calendar.GoogleCalendarClient``); None = from GOOGLE_* settings, if set.
    google: object | None = None
    #: Sender address when neither the step, the workflow nor the location has one.
    default_from_email: str = "reminders@punctual.invalid"
    public_url: str = "http://127.0.0.1:5000"
    #: Signs List-Unsubscribe links; never a built-in value (the composition root passes the deployment's).
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
