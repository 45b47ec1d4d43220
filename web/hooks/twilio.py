"""``/hooks/twilio/*``: what Twilio tells us (contract ``EXTERNAL_APIS.md`` §2.5–§2.7, §3.3–§3.4).

- ``POST /hooks/twilio/status``: delivery receipts for texts (``MessageStatus``) and call progress
  (``CallStatus``), applied by ``automations.outbox.receipts`` (idempotent, never backwards);
- ``POST|GET /hooks/twilio/inbound``: incoming texts, recorded by ``automations.outbox.inbound`` (replies,
  STOP/START/HELP); answered with empty TwiML (Twilio itself answers the keywords);
- ``POST /hooks/twilio/voicemail?m=<id>``: the TwiML a voicemail drop plays once answering-machine
  detection has decided (``AnsweredBy``).

Every request is verified first: ``X-Twilio-Signature`` over the *public* URL (``PUNCTUAL_PUBLIC_URL`` +
path + query, as Twilio requested it) and every form field, keyed by ``TWILIO_AUTH_TOKEN``. A bad or missing
signature (or no token configured) is a 403 and nothing in the body is acted on. Bodies are limited to
64 KiB; a malformed one is a 4xx, never a 500.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import RequestEntityTooLarge

from automations.errors import BadRequest, Forbidden
from automations.outbox import inbound, receipts
from automations.outbox.delivery import write_logs
from automations.store.db import transaction
from automations.store.models import Message
from providers.twilio_signature import TwilioSignatureVerifier
from providers.twilio_voice import voicemail_twiml

log = logging.getLogger(__name__)
bp = Blueprint("twilio_hooks", __name__, url_prefix="/hooks/twilio")

MAX_BODY = 64 * 1024
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
HANGUP_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>'
MAX_FIELD = 100  # SIDs, statuses, codes, numbers: anything longer is not Twilio's


def _state():
    return current_app.extensions["punctual"]


def _verified() -> dict[str, str]:
    """The request's fields (form and query), once its signature checks out; else 403."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise RequestEntityTooLarge()
    request.max_content_length = MAX_BODY  # also bounds a body sent without Content-Length
    settings = _state().settings
    if not settings.twilio_auth_token:
        raise Forbidden("Twilio webhooks are not configured (TWILIO_AUTH_TOKEN is unset)")
    params = request.form if request.method == "POST" else None
    verifier = TwilioSignatureVerifier(settings.twilio_auth_token, public_base_url=settings.public_url)
    if not verifier.verify_environ(request.environ, params):
        raise Forbidden("invalid Twilio signature")
    return {k: v for k, v in request.values.items()}


def _field(values: dict[str, str], *names: str) -> str | None:
    for name in names:
        value = (values.get(name) or "").strip()
        if value:
            if len(value) > MAX_FIELD:
                raise BadRequest(f"{name} is too long")
            return value
    return None


def _wake() -> None:
    wake = getattr(_state().runtime, "wake", None)
    if callable(wake):
        wake()


def _twiml(xml: str) -> Response:
    return Response(xml, status=200, mimetype="text/xml")


@bp.post("/status")
def status() -> Response:
    values = _verified()
    message_sid = _field(values, "MessageSid", "SmsSid")
    call_sid = _field(values, "CallSid")
    sid = message_sid or call_sid
    raw = _field(values, "MessageStatus", "SmsStatus") if message_sid else _field(values, "CallStatus")
    if not sid or not raw:
        raise BadRequest("a status callback needs MessageSid/MessageStatus or CallSid/CallStatus")
    state = _state()
    now = state.clock.now()
    with transaction(state.factory) as session:
        applied = receipts.apply(
            session, sid=sid, raw_status=raw, kind="message" if message_sid else "call", now=now,
            error_code=_field(values, "ErrorCode"), hint=_field(values, "m"), answered_by=_field(values, "AnsweredBy"),
        )
        line = applied.log_line
        enrollment_id = applied.message.enrollment_id if applied.message is not None else None
    if applied.message is None:
        log.info("status callback for unknown %s %s (%s): ignored", "message" if message_sid else "call", sid, raw)
    if line and enrollment_id:
        write_logs(state.factory, [(enrollment_id, *line)], now)
    if applied.changed:
        _wake()  # an alert to the admins may be waiting in the outbox
    return Response(status=204)


@bp.route("/inbound", methods=["POST", "GET"])
def inbound_sms() -> Response:
    values = _verified()
    sid = _field(values, "MessageSid", "SmsMessageSid", "SmsSid")
    sender = _field(values, "From")
    if not sid or not sender:
        raise BadRequest("an inbound message needs MessageSid and From")
    state = _state()
    try:
        with transaction(state.factory) as session:
            inbound.receive_sms(
                session, provider_id=sid, from_number=sender, to_number=_field(values, "To"),
                body=values.get("Body") or "", opt_out_type=_field(values, "OptOutType"), now=state.clock.now(),
            )
    except IntegrityError:
        # Twilio's retry raced the first delivery of the same message: that one recorded it.
        log.info("inbound %s recorded concurrently by another request", sid)
        return _twiml(EMPTY_TWIML)
    _wake()
    return _twiml(EMPTY_TWIML)


@bp.post("/voicemail")
def voicemail() -> Response:
    values = _verified()
    message_id = _field(values, "m")
    answered_by = _field(values, "AnsweredBy")
    state = _state()
    with transaction(state.factory) as session:
        m = session.get(Message, message_id) if message_id else None
        if m is None or m.channel != "voicemail" or not m.template.get("audio_url"):
            return _twiml(HANGUP_TWIML)
        m.answered_by = answered_by or "unknown"
        audio_url, human = m.template["audio_url"], m.body or None
    return _twiml(voicemail_twiml(answered_by, audio_url, human_message=human))
