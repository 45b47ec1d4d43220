"""The outbox's channels: how a claimed message is rendered at send time into its provider's envelope,
and how each envelope is handed to its sender.

| channel | template keys | sender |
|---|---|---|
| ``email`` | subject, body, html, from_name, from_email, reply_to, cc, bcc | ``EmailSender.send_batch`` (one SMTP connection per batch) |
| ``sms`` | body, media_urls, from_number | ``SmsSender.send`` |
| ``in_app`` | subject, body | none: delivery writes the Notification row itself |
| ``call`` | whisper, user_phone, from_number, ring_timeout | ``TwilioVoiceCaller.call`` (rings the user, connects the contact) |
| ``voicemail`` | audio_url, human_message, from_number | ``TwilioVoiceCaller.voicemail_drop`` (AMD, then the recording) |
| ``webhook`` | url, method, headers, body, auth | ``WebhookSender.send`` |
| ``slack`` | webhook_url, text, blocks | ``SlackWebhookSender.send`` |

Text templates are rendered with the sandboxed merge fields; ``literal`` templates (staff alerts about
failures, whose text quotes provider errors) are used as they are. Twilio sends carry a status-callback URL
naming the outbox row (``…/hooks/twilio/status?m=<id>``), so a receipt can be matched to its message even
when the worker died before recording the provider's id (see ``automations.outbox.receipts``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from automations.errors import PermanentProviderError, ProviderError
from automations.outbox import unsubscribe
from automations.rendering import merge_fields
from automations.store.models import Location, Message
from providers.base import EmailSender, OutgoingEmail, OutgoingSms, SendResult, SmsSender

log = logging.getLogger(__name__)

CHANNELS = ("email", "sms", "in_app", "call", "voicemail", "webhook", "slack")
#: Channels that reach the contact's phone number (replies to them come back as texts).
PHONE_CHANNELS = ("sms", "call", "voicemail")
#: Characters of a webhook/Slack response kept on the message for the log.
RESPONSE_SNIPPET = 500


@dataclass
class Senders:
    """One sender per channel, and what envelopes need from the deployment."""

    email: EmailSender
    sms: SmsSender
    default_from_email: str = "reminders@punctual.invalid"
    voice: Any = None  # TwilioVoiceCaller or CaptureVoice; None = capture
    webhook: Any = None  # WebhookSender; None = a default one made on first use
    slack: Any = None  # SlackWebhookSender; None = a default one made on first use
    public_url: str = "http://127.0.0.1:5000"
    secret_key: str = "dev-only-not-secret"

    def __post_init__(self) -> None:
        if self.voice is None:
            from providers.capture import CaptureVoice

            self.voice = CaptureVoice()

    def http(self, channel: str):
        if channel == "webhook" and self.webhook is None:
            from providers.http_actions import WebhookSender

            self.webhook = WebhookSender()
        if channel == "slack" and self.slack is None:
            from providers.http_actions import SlackWebhookSender

            self.slack = SlackWebhookSender()
        return self.webhook if channel == "webhook" else self.slack


# -- rendering ---------------------------------------------------------------------------------------


def _text(m: Message, key: str, context: dict, *, escape_html: bool = False) -> str:
    value = m.template.get(key) or ""
    if not isinstance(value, str):
        return ""
    if m.template.get("literal"):
        return value
    return merge_fields.render(value, context, escape_html=escape_html)


def _deep(value: Any, context: dict) -> Any:
    """Render every string inside a JSON value (so substituted text can never break the JSON)."""
    if isinstance(value, str):
        return merge_fields.render(value, context)
    if isinstance(value, list):
        return [_deep(v, context) for v in value]
    if isinstance(value, dict):
        return {k: _deep(v, context) for k, v in value.items()}
    return value


def render(m: Message, context: dict, location: Location, senders: Senders) -> object | None:
    """Fill the message's rendered fields (subject, body, html) from ``context`` and return the provider
    envelope (None for in-app). Raises PermanentProviderError when the rendered message cannot be sent."""
    t = m.template
    channel = m.channel
    if channel in ("email", "in_app"):
        m.subject = _text(m, "subject", context) or None
        m.body = _text(m, "body", context)
        m.html = _text(m, "html", context, escape_html=True) if t.get("html") else None
        return _email(m, location, senders) if channel == "email" else None
    if channel == "sms":
        m.body = _text(m, "body", context)
        return OutgoingSms(message_id=m.id, to=m.to_address, body=m.body or "", from_number=t.get("from_number"),
                           media_urls=tuple(t.get("media_urls") or ()),
                           status_callback=callback_url(senders.sms, m))
    if channel == "call":
        from providers.twilio_voice import OutgoingCall

        m.body = _text(m, "whisper", context)
        return OutgoingCall(message_id=m.id, user_phone=t.get("user_phone") or "", contact_phone=m.to_address or "",
                            whisper=m.body, from_number=t.get("from_number"),
                            status_callback=callback_url(senders.voice, m), ring_timeout=int(t.get("ring_timeout") or 30))
    if channel == "voicemail":
        from providers.twilio_voice import OutgoingVoicemail

        m.body = _text(m, "human_message", context) or None
        real = getattr(senders.voice, "name", "capture") != "capture"
        return OutgoingVoicemail(
            message_id=m.id, to=m.to_address or "", audio_url=t.get("audio_url") or "", from_number=t.get("from_number"),
            status_callback=callback_url(senders.voice, m),
            # Synchronous AMD: Twilio asks our TwiML endpoint what to play once it knows who answered.
            twiml_url=f"{senders.public_url}/hooks/twilio/voicemail?m={m.id}" if real else None,
        )
    if channel == "webhook":
        return _webhook(m, context)
    if channel == "slack":
        m.body = _text(m, "text", context)  # the webhook URL is its secret: it stays out of the outbox view
        blocks = _deep(t.get("blocks"), context) if t.get("blocks") else None
        return (t.get("webhook_url") or "", m.body, blocks)
    raise PermanentProviderError(f"unknown channel {channel!r}", provider_code="channel")


def _email(m: Message, location: Location, senders: Senders) -> OutgoingEmail:
    t = m.template
    headers: dict[str, str] = {}
    if m.audience == "contact" and m.contact_id:
        # RFC 2369 + RFC 8058: the https URL takes the one-click POST (web/unsubscribe.py).
        headers["List-Unsubscribe"] = f"<{unsubscribe.url(senders.public_url, senders.secret_key, m.contact_id)}>"
    return OutgoingEmail(
        message_id=m.id, to=m.to_address, subject=m.subject or "", text=m.body or "", html=m.html,
        from_email=t.get("from_email") or location.email or senders.default_from_email,
        from_name=t.get("from_name") or location.name, reply_to=t.get("reply_to"),
        cc=tuple(t.get("cc") or ()), bcc=tuple(t.get("bcc") or ()), headers=headers,
    )


def _webhook(m: Message, context: dict):
    from providers.http_actions import BasicAuth, BearerAuth, WebhookRequest

    t = m.template
    url = merge_fields.render(t.get("url") or "", context).strip()
    method = (t.get("method") or "POST").upper()
    headers = {str(k): merge_fields.render(str(v), context) for k, v in (t.get("headers") or {}).items()}
    # The receiver can drop a repeat (a retry after an ambiguous failure) by this key.
    if not any(k.lower() == "idempotency-key" for k in headers):
        headers["Idempotency-Key"] = m.idempotency_key
    body = t.get("body")
    if isinstance(body, dict | list):
        rendered = json.dumps(_deep(body, context))
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    else:
        rendered = merge_fields.render(body, context) if body else None
    auth = None
    spec = t.get("auth") or {}
    if spec.get("type") == "basic":
        auth = BasicAuth(merge_fields.render(spec.get("username") or "", context),
                         merge_fields.render(spec.get("password") or "", context))
    elif spec.get("type") == "bearer":
        auth = BearerAuth(merge_fields.render(spec.get("token") or "", context))
    m.subject = f"{method} {url}"
    m.body = rendered
    return WebhookRequest(url=url, method=method, headers=headers, body=rendered, auth=auth)


def callback_url(sender: Any, m: Message) -> str | None:
    """The sender's status-callback URL with this message's id added (None for capture senders)."""
    base = getattr(sender, "status_callback", None)
    if not base:
        return None
    return f"{base}{'&' if '?' in base else '?'}m={m.id}"


# -- sending -----------------------------------------------------------------------------------------


def send_all(batch: list[tuple[Message, object]], senders: Senders) -> list[tuple[str, SendResult | Exception]]:
    """Hand every envelope to its channel's sender, outside any transaction. One result per message: a
    SendResult or the ProviderError it met. A bug in a sender is a permanent failure of that message (never
    retried: it may have gone out before the bug struck); anything that is not an Exception (the process
    being torn down) propagates, leaving the batch to be reclaimed after its lease."""
    results: list[tuple[str, SendResult | Exception]] = []
    emails = [(m, env) for m, env in batch if m.channel == "email"]
    if emails:
        try:
            outcomes = senders.email.send_batch([env for _, env in emails])
        except ProviderError as exc:
            outcomes = [exc] * len(emails)
        except Exception as exc:
            log.exception("email sender failed")
            outcomes = [_internal(exc)] * len(emails)
        results += [(m.id, r) for (m, _), r in zip(emails, outcomes, strict=True)]
    for m, env in batch:
        if m.channel == "email":
            continue
        try:
            results.append((m.id, _send_one(m.channel, env, senders)))
        except ProviderError as exc:
            results.append((m.id, exc))
        except Exception as exc:
            log.exception("%s sender failed on message %s", m.channel, m.id)
            results.append((m.id, _internal(exc)))
    return results


def _internal(exc: Exception) -> PermanentProviderError:
    error = PermanentProviderError(f"internal error in the sender: {type(exc).__name__}: {exc}",
                                   provider_code="internal")
    error.__cause__ = exc
    return error


def _send_one(channel: str, env: Any, senders: Senders) -> SendResult:
    if channel == "sms":
        return senders.sms.send(env)
    if channel == "call":
        return senders.voice.call(env)
    if channel == "voicemail":
        return senders.voice.voicemail_drop(env)
    if channel == "webhook":
        result = senders.http("webhook").send(env)
        return _http_result("webhook", result)
    if channel == "slack":
        url, text, blocks = env
        result = senders.http("slack").send(url, text, blocks)
        return _http_result("slack", result)
    raise PermanentProviderError(f"no sender for channel {channel!r}", provider_code="channel")


def _http_result(name: str, result) -> SendResult:
    detail = {"http_status": result.status_code, "response": result.body[:RESPONSE_SNIPPET]}
    return SendResult(name, f"HTTP {result.status_code}", "sent", detail)
