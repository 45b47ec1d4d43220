"""The outbox's channels, a registry like step and trigger types: each channel says how a claimed message is
rendered at send time into its provider's envelope, and how that envelope is sent.

| channel | template keys | sender (in ``providers.bag.Providers``) |
|---|---|---|
| ``email`` | subject, body, html, from_name, from_email, reply_to, cc, bcc | ``email.send_each`` (one SMTP connection per batch) |
| ``sms`` | body, media_urls, from_number | ``sms.send`` |
| ``in_app`` | subject, body | none: delivery writes the Notification row itself |
| ``call`` | whisper, user_phone, from_number, ring_timeout | ``voice.call`` (rings the user, connects the contact) |
| ``voicemail`` | audio_url, human_message, from_number | ``voice.voicemail_drop`` (AMD, then the recording) |
| ``webhook`` | url, method, headers, body, auth | ``webhook.send`` |
| ``slack`` | webhook_url, text, blocks | ``slack.send`` |

Text templates are rendered with the sandboxed merge fields; ``literal`` templates (staff alerts about
failures, whose text quotes provider errors) are used as they are. Twilio sends carry a status-callback URL
naming the outbox row (``…/hooks/twilio/status?m=<id>``), so a receipt can be matched to its message even
when the worker died before recording the provider's id (see ``automations.outbox.receipts``).

A delivery batch is sent in two lanes (:func:`lanes`) that run side by side: its emails over one SMTP
connection, and everything else (texts, calls, webhooks, Slack) one request at a time. Within a lane, sending is
one message at a time, each handed over only after ``proceed(message)`` said yes (delivery checks its lease and
that the message is still warranted) and each outcome yielded as soon as the provider answers, so delivery can
record it before the lane's next send: at most one send per lane — two per worker — is ever in flight.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from automations.errors import PermanentProviderError, ProviderError
from automations.outbox import unsubscribe
from automations.registry import Registry
from automations.rendering import merge_fields
from automations.store.models import Location, Message
from providers.bag import Providers
from providers.base import OutgoingEmail, OutgoingSms, SendResult
from providers.http_actions import BasicAuth, BearerAuth, HttpActionResult, WebhookRequest
from providers.twilio_voice import OutgoingCall, OutgoingVoicemail

log = logging.getLogger(__name__)

Outcome = SendResult | Exception


class Channel:
    """One way to reach someone. ``render`` fills the message's shown fields and returns the envelope (None:
    nothing to hand to a provider); ``send`` hands one envelope to its provider."""

    name: str
    #: Reaches the contact's phone number (replies to it come back as texts).
    phone: bool = False

    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> Any:
        raise NotImplementedError

    def send(self, envelope: Any, providers: Providers) -> SendResult:
        raise PermanentProviderError(f"no sender for channel {self.name!r}", provider_code="channel")


CHANNELS: Registry[Channel] = Registry("channel")


# -- rendering helpers ---------------------------------------------------------------------------------


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


def callback_url(sender: Any, m: Message) -> str | None:
    """The sender's status-callback URL with this message's id added (None for capture senders)."""
    base = getattr(sender, "status_callback", None)
    if not base:
        return None
    return f"{base}{'&' if '?' in base else '?'}m={m.id}"


def _phone_fields(m: Message, sender: Any) -> dict[str, Any]:
    """What every phone envelope (SMS, call, voicemail) carries: the message id, the sender number and the
    status callback of the provider that sends it."""
    return {"message_id": m.id, "from_number": m.template.get("from_number"), "status_callback": callback_url(sender, m)}


def _http_result(name: str, result: HttpActionResult) -> SendResult:
    # Only the status: the response body is the remote side's words and never shown to the tenant.
    return SendResult(name, f"HTTP {result.status_code}", "sent", {"http_status": result.status_code})


# -- the channels --------------------------------------------------------------------------------------


@CHANNELS.register("email")
class EmailChannel(Channel):
    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> OutgoingEmail:
        m.subject = _text(m, "subject", context) or None
        m.body = _text(m, "body", context)
        m.html = _text(m, "html", context, escape_html=True) if m.template.get("html") else None
        t = m.template
        headers: dict[str, str] = {}
        if m.audience == "contact" and m.contact_id:
            # RFC 2369 + RFC 8058: the https URL takes the one-click POST (web/unsubscribe.py).
            link = unsubscribe.url(providers.public_url, providers.secret_key, m.contact_id)
            headers["List-Unsubscribe"] = f"<{link}>"
        return OutgoingEmail(
            message_id=m.id, to=m.to_address or "", subject=m.subject or "", text=m.body or "", html=m.html,
            from_email=t.get("from_email") or location.email or providers.default_from_email,
            from_name=t.get("from_name") or location.name, reply_to=t.get("reply_to"),
            cc=tuple(t.get("cc") or ()), bcc=tuple(t.get("bcc") or ()), headers=headers,
        )


@CHANNELS.register("in_app")
class InAppChannel(Channel):
    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> None:
        m.subject = _text(m, "subject", context) or None
        m.body = _text(m, "body", context)
        m.html = None
        return None


@CHANNELS.register("sms")
class SmsChannel(Channel):
    phone = True

    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> OutgoingSms:
        m.body = _text(m, "body", context)
        return OutgoingSms(to=m.to_address or "", body=m.body or "", media_urls=tuple(m.template.get("media_urls") or ()),
                           **_phone_fields(m, providers.sms))

    def send(self, envelope: OutgoingSms, providers: Providers) -> SendResult:
        return providers.sms.send(envelope)


@CHANNELS.register("call")
class CallChannel(Channel):
    phone = True

    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> OutgoingCall:
        t = m.template
        m.body = _text(m, "whisper", context)
        return OutgoingCall(user_phone=t.get("user_phone") or "", contact_phone=m.to_address or "", whisper=m.body,
                            ring_timeout=int(t.get("ring_timeout") or 30), **_phone_fields(m, providers.voice))

    def send(self, envelope: OutgoingCall, providers: Providers) -> SendResult:
        return providers.voice.call(envelope)


@CHANNELS.register("voicemail")
class VoicemailChannel(Channel):
    phone = True

    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> OutgoingVoicemail:
        m.body = _text(m, "human_message", context) or None
        real = getattr(providers.voice, "name", "capture") != "capture"
        return OutgoingVoicemail(
            to=m.to_address or "", audio_url=m.template.get("audio_url") or "", **_phone_fields(m, providers.voice),
            # Synchronous AMD: Twilio asks our TwiML endpoint what to play once it knows who answered.
            twiml_url=f"{providers.public_url}/hooks/twilio/voicemail?m={m.id}" if real else None,
        )

    def send(self, envelope: OutgoingVoicemail, providers: Providers) -> SendResult:
        return providers.voice.voicemail_drop(envelope)


@CHANNELS.register("webhook")
class WebhookChannel(Channel):
    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> WebhookRequest:
        t = m.template
        url = merge_fields.render(t.get("url") or "", context).strip()
        method = (t.get("method") or "POST").upper()
        headers = {str(k): merge_fields.render(str(v), context) for k, v in (t.get("headers") or {}).items()}
        lowered = {k.lower() for k in headers}
        # The receiver can drop a repeat (a retry after an ambiguous failure) by this key.
        if "idempotency-key" not in lowered:
            headers["Idempotency-Key"] = m.idempotency_key
        body = t.get("body")
        rendered: str | None
        if isinstance(body, dict | list):
            rendered = json.dumps(_deep(body, context))
            if "content-type" not in lowered:
                headers["Content-Type"] = "application/json"
        else:
            rendered = merge_fields.render(body, context) if body else None
        auth: BasicAuth | BearerAuth | None = None
        spec = t.get("auth") or {}
        if spec.get("type") == "basic":
            auth = BasicAuth(merge_fields.render(spec.get("username") or "", context),
                             merge_fields.render(spec.get("password") or "", context))
        elif spec.get("type") == "bearer":
            auth = BearerAuth(merge_fields.render(spec.get("token") or "", context))
        m.subject = f"{method} {url}"
        m.body = rendered
        return WebhookRequest(url=url, method=method, headers=headers, body=rendered, auth=auth)

    def send(self, envelope: WebhookRequest, providers: Providers) -> SendResult:
        return _http_result("webhook", providers.webhook.send(envelope))


@CHANNELS.register("slack")
class SlackChannel(Channel):
    def render(self, m: Message, context: dict, location: Location, providers: Providers) -> tuple:
        t = m.template
        m.body = _text(m, "text", context)  # the webhook URL is its secret: it stays out of the outbox view
        blocks = _deep(t.get("blocks"), context) if t.get("blocks") else None
        return (t.get("webhook_url") or "", m.body, blocks)

    def send(self, envelope: tuple, providers: Providers) -> SendResult:
        url, text, blocks = envelope
        return _http_result("slack", providers.slack.send(url, text, blocks))


#: Channels that reach the contact's phone number (replies to them come back as texts).
PHONE_CHANNELS = tuple(c.name for c in CHANNELS if c.phone)


def names() -> list[str]:
    return CHANNELS.names()


def render(m: Message, context: dict, location: Location, providers: Providers) -> Any:
    """Fill the message's rendered fields from ``context`` and return its provider envelope (None for in-app).
    Raises PermanentProviderError for an unknown channel."""
    if m.channel not in CHANNELS:
        raise PermanentProviderError(f"unknown channel {m.channel!r}", provider_code="channel")
    return CHANNELS.get(m.channel).render(m, context, location, providers)


# -- sending -----------------------------------------------------------------------------------------


#: How many sends a worker has in flight at once, one per lane: the most a kill can repeat.
LANES = 2


def lanes(batch: list[tuple[Message, Any]]) -> list[list[tuple[Message, Any]]]:
    """The batch split into the lanes that are sent side by side, order kept, empty ones left out: its
    emails (one SMTP connection) and the rest (one provider request each). Two waits on two different
    providers overlap instead of adding up; each lane still has one send in flight."""
    emails = [pair for pair in batch if pair[0].channel == "email"]
    rest = [pair for pair in batch if pair[0].channel != "email"]
    return [lane for lane in (emails, rest) if lane]


def send_each(batch: list[tuple[Message, Any]], providers: Providers,
              proceed: Callable[[Message], bool]) -> Iterator[tuple[Message, Outcome]]:
    """Hand each envelope to its channel's sender, outside any transaction, one at a time, each only once
    ``proceed(message)`` allows it; yield ``(message, outcome)`` as soon as each provider answers. A bug in a
    sender is a permanent failure of that message (never retried: it may have gone out before the bug struck);
    anything that is not an Exception (the process being torn down) propagates, leaving the rest to be
    reclaimed after their lease."""
    emails = [(m, env) for m, env in batch if m.channel == "email"]
    if emails:
        by_id = {m.id: m for m, _ in emails}
        answered: set[str] = set()
        try:
            for envelope, outcome in providers.email.send_each([env for _, env in emails],
                                                                lambda env: proceed(by_id[env.message_id])):
                answered.add(envelope.message_id)
                yield by_id[envelope.message_id], outcome
        except Exception as exc:  # the sender itself broke: the unanswered ones are retried (at least once)
            if not isinstance(exc, ProviderError):
                log.exception("email sender failed")
                exc = _internal(exc)
            for m, _ in emails:
                if m.id not in answered and m.status == "sending":
                    yield m, exc
    for m, env in batch:
        if m.channel == "email" or not proceed(m):
            continue
        try:
            outcome = CHANNELS.get(m.channel).send(env, providers)
        except ProviderError as exc:
            outcome = exc
        except Exception as exc:
            log.exception("%s sender failed on message %s", m.channel, m.id)
            outcome = _internal(exc)
        yield m, outcome


def _internal(exc: Exception) -> PermanentProviderError:
    error = PermanentProviderError(f"internal error in the sender: {type(exc).__name__}", provider_code="internal")
    error.__cause__ = exc
    return error
