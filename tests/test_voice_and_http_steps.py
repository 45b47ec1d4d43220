"""The call and voicemail steps through Twilio Voice (the fake's view of each request, call receipts, the
AMD TwiML endpoint), and the webhook and Slack steps against local receivers (contract §3, §6)."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.store.models import Appointment, Contact, Enrollment, Notification, User
from tests.conftest import local_providers
from tests.delivery_fixtures import FROM_NUMBER, PUBLIC_URL, twilio_fixture, wire_fixture  # noqa: F401
from tests.factories import book, doc, log_lines, messages, publish
from tests.fakes.slack_server import FakeSlack, WebhookReceiver

AUDIO = "https://cdn.example.com/voicemail/reminder.mp3"


def start(factory, clock, world, *steps, calendar_id=None, start_at=None, **settings):
    with factory() as s, s.begin():
        publish(s, world, doc(*steps, **settings), clock.now())
        return book(s, world, clock.now(), calendar_id=calendar_id or world.static_calendar_id, start=start_at).id


def only(s, **where):
    (m,) = messages(s, **where)
    return m


def test_call_rings_the_assigned_user_with_a_whisper_then_connects_the_contact(factory, clock, world, wire, twilio):
    w = wire()
    appt_id = start(factory, clock, world, {"id": "call", "type": "call", "whisper": "Call with {{contact.name}}."},
                    calendar_id=world.calendar_id)
    w.runtime.tick()
    (request,) = twilio.api_requests("Calls")
    with factory() as s:
        user = s.get(User, s.get(Appointment, appt_id).assigned_user_id)
        m = only(s, channel="call")
    form = request.form
    assert form["To"] == [user.phone] and form["From"] == [FROM_NUMBER]
    twiml = form["Twiml"][0]
    assert '<Say voice="alice">Call with Dana Contact.</Say>' in twiml
    assert f'callerId="{FROM_NUMBER}"' in twiml and "<Number>+12125550123</Number>" in twiml
    assert form["StatusCallback"] == [f"{PUBLIC_URL}/hooks/twilio/status?m={m.id}"]
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (m.status, m.provider, m.body, m.user_id) == ("sent", "twilio", "Call with Dana Contact.", user.id)

    for status, ours in (("ringing", "sent"), ("in-progress", "delivered"), ("completed", "delivered"),
                         ("ringing", "delivered")):
        assert twilio.send_status_callback(m.provider_id, status, via=w.live.base_url).status_code == 204
        with factory() as s:
            assert only(s, channel="call").status == ours


def test_an_unanswered_call_is_undelivered(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, {"id": "call", "type": "call"}, calendar_id=world.calendar_id)
    w.runtime.tick()
    with factory() as s:
        sid = only(s, channel="call").provider_id
    twilio.send_status_callback(sid, "no-answer", via=w.live.base_url)
    with factory() as s:
        m = only(s, channel="call")
        assert m.status == "undelivered" and m.provider_status == "no-answer"


def test_call_is_skipped_without_someone_to_connect(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, {"id": "call", "type": "call"})  # the walk-in calendar has no assigned user
    w.runtime.tick()
    assert twilio.api_requests("Calls") == []
    with factory() as s:
        assert messages(s) == []
        enrollment_id = s.scalars(select(Enrollment.id)).one()
        assert ("call", "skipped", "skipped: the appointment has no assigned user to connect") in log_lines(
            s, enrollment_id)


@pytest.mark.parametrize(("answered_by", "plays"), [
    ("machine_end_beep", f"<Play>{AUDIO}</Play><Hangup />"),
    ("human", '<Say voice="alice">Hi Dana, please call us back.</Say><Hangup />'),
    ("fax", "<Hangup />"),
])
def test_voicemail_drop_uses_answering_machine_detection(factory, clock, world, wire, twilio, answered_by, plays):
    w = wire()
    start(factory, clock, world, {"id": "vm", "type": "voicemail", "audio_url": AUDIO,
                                  "human_message": "Hi {{contact.first_name}}, please call us back."})
    w.runtime.tick()
    (request,) = twilio.api_requests("Calls")
    with factory() as s:
        m = only(s, channel="voicemail")
    assert request.form["To"] == ["+12125550123"]
    assert request.form["MachineDetection"] == ["DetectMessageEnd"]
    twiml_url = f"{PUBLIC_URL}/hooks/twilio/voicemail?m={m.id}"
    assert request.form["Url"] == [twiml_url]
    # Twilio requests the Url once detection has decided, signed like every webhook.
    form = {"CallSid": m.provider_id, "AccountSid": twilio.account_sid, "AnsweredBy": answered_by,
            "CallStatus": "in-progress", "To": "+12125550123", "From": FROM_NUMBER}
    reply = w.post_signed("/hooks/twilio/voicemail", form, query=f"?m={m.id}")
    assert reply.status_code == 200 and reply.mimetype == "text/xml"
    assert plays in reply.get_data(as_text=True)
    assert w.post_signed("/hooks/twilio/voicemail", form, query="?m=nope").get_data(as_text=True).endswith(
        "<Response><Hangup/></Response>")
    forged = w.client.post(f"/hooks/twilio/voicemail?m={m.id}", data=form, headers={"X-Twilio-Signature": "bad"})
    assert forged.status_code == 403


def test_voice_errors_map_like_sms(factory, clock, world, wire, twilio):
    w = wire()
    with factory() as s, s.begin():
        s.get(Contact, world.dana_id).phone = "+15005550001"  # the fake's invalid voice number (21217)
    start(factory, clock, world, {"id": "vm", "type": "voicemail", "audio_url": AUDIO})
    w.runtime.tick()
    with factory() as s:
        m = only(s, channel="voicemail")
        assert (m.status, m.error_code) == ("failed", "21217")


def test_skip_outbound_skips_call_and_voicemail_but_not_webhook_and_slack(factory, clock, world):
    with FakeSlack() as slack, WebhookReceiver() as hook:
        steps = (
            {"id": "w", "type": "wait_appointment_time", "direction": "before", "days": 2,
             "if_past": {"action": "skip_outbound"}},
            {"id": "call", "type": "call"},
            {"id": "vm", "type": "voicemail", "audio_url": AUDIO},
            {"id": "hook", "type": "webhook", "url": hook.url()},
            {"id": "slack", "type": "slack", "webhook_url": slack.webhook_url, "text": "booked"},
        )
        runtime = Runtime(factory, clock=clock, providers=local_providers(), settings=Settings(batch_size=100))
        start(factory, clock, world, *steps, calendar_id=world.calendar_id, start_at=clock.now() + timedelta(hours=5))
        runtime.tick()
        assert len(hook.requests) == 1 and slack.posted == [{"text": "booked"}]
    with factory() as s:
        assert sorted(m.channel for m in messages(s)) == ["slack", "webhook"]
        lines = log_lines(s, messages(s)[0].enrollment_id)
        assert [(step, outcome) for step, outcome, _ in lines[2:4]] == [("call", "skipped"), ("vm", "skipped")]


def test_webhook_sends_method_headers_auth_and_a_json_body_with_merge_fields(factory, clock, world, runtime):
    with factory() as s, s.begin():
        s.get(Contact, world.dana_id).first_name = 'Da"na'  # a quote must not break the JSON
    step = {"id": "hook", "type": "webhook", "method": "PUT", "headers": {"X-Contact": "{{contact.email}}"},
            "auth": {"type": "basic", "username": "punctual", "password": "{{custom_values.promo}}"},
            "body": {"name": "{{contact.name}}", "when": "{{appointment.only_start_date}}", "n": 1}}
    with WebhookReceiver() as hook:
        step["url"] = hook.url("/bookings/{{contact.email}}")
        start(factory, clock, world, step)
        runtime.tick()
        (request,) = hook.requests
    with factory() as s:
        m = only(s, channel="webhook")
    assert (request.method, request.path) == ("PUT", "/bookings/dana@example.com")
    assert request.header("X-Contact") == "dana@example.com"
    assert request.header("Authorization") == "Basic " + base64.b64encode(b"punctual:SPRING").decode()
    assert request.header("Idempotency-Key") == m.idempotency_key
    assert request.header("Content-Type") == "application/json"
    body = request.json()
    assert body["name"] == 'Da"na Contact' and body["n"] == 1 and body["when"]
    assert (m.status, m.provider, m.provider_id) == ("sent", "webhook", "HTTP 200")
    assert m.provider_detail == {"http_status": 200}  # never the remote body


def test_webhook_retries_5xx_honouring_retry_after(factory, clock, world, runtime):
    with WebhookReceiver() as hook:
        hook.respond(503, "busy", headers={"Retry-After": "30"})
        start(factory, clock, world, {"id": "hook", "type": "webhook", "url": hook.url(), "body": "hi"})
        runtime.tick()
        with factory() as s:
            m = only(s, channel="webhook")
            assert m.status == "pending" and m.due_at >= clock.now() + timedelta(seconds=30)
        clock.set(m.due_at)
        runtime.tick()
        assert len(hook.requests) == 2
        with factory() as s:
            assert only(s, channel="webhook").status == "sent"


def test_webhook_fails_a_4xx_at_once_and_alerts_the_admins(factory, clock, world, runtime):
    with WebhookReceiver() as hook:
        hook.respond(404, "nope")
        start(factory, clock, world, {"id": "hook", "type": "webhook", "url": hook.url("/gone")})
        runtime.tick()
        runtime.tick()
        assert len(hook.requests) == 1
    with factory() as s:
        failed = only(s, channel="webhook")
        assert (failed.status, failed.error_code, failed.attempts) == ("failed", "404", 1)
        assert [n.user_id for n in s.scalars(select(Notification))] == [world.alice_id]


def test_slack_posts_text_and_blocks_and_honours_rate_limits(factory, clock, world, runtime):
    with FakeSlack() as slack:
        slack.rate_limit(1, retry_after=5)
        step = {"id": "slack", "type": "slack", "webhook_url": slack.webhook_url,
                "text": "New booking: {{contact.name}}",
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*{{contact.name}}*"}}]}
        start(factory, clock, world, step)
        runtime.tick()
        with factory() as s:
            m = only(s, channel="slack")
            assert m.status == "pending" and m.due_at >= clock.now() + timedelta(seconds=5)
        clock.set(m.due_at)
        runtime.tick()
        assert slack.posted == [{"text": "New booking: Dana Contact", "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Dana Contact*"}}]}]



def test_a_dead_slack_webhook_fails_at_once(factory, clock, world, runtime):
    with FakeSlack() as slack:
        slack.revoke()
        start(factory, clock, world, {"id": "slack", "type": "slack", "webhook_url": slack.webhook_url, "text": "hi"})
        runtime.tick()
    with factory() as s:
        dead = only(s, channel="slack")
        assert (dead.status, dead.error_code) == ("failed", "no_service")
        assert "disable it" in dead.status_reason
        assert len(s.scalars(select(Notification)).all()) == 1


def test_step_documents_are_validated():
    from automations.documents.workflow_schema import load_document
    from automations.errors import ValidationError

    bad = [
        ({"id": "a", "type": "webhook", "url": "ftp://x"}, "steps[0].url"),
        ({"id": "a", "type": "webhook", "url": "https://x", "method": "TRACE"}, "steps[0].method"),
        ({"id": "a", "type": "webhook", "url": "https://x", "body": 5}, "steps[0].body"),
        ({"id": "a", "type": "webhook", "url": "https://x", "auth": {"type": "bearer"}}, "steps[0].auth.token"),
        ({"id": "a", "type": "slack", "webhook_url": "https://x"}, "steps[0].text"),
        ({"id": "a", "type": "voicemail", "audio_url": "not a url"}, "steps[0].audio_url"),
        ({"id": "a", "type": "call", "ring_timeout": 1}, "steps[0].ring_timeout"),
    ]
    for step, path in bad:
        with pytest.raises(ValidationError) as info:
            load_document(doc(step))
        assert path in info.value.fields, (step, info.value.fields)
