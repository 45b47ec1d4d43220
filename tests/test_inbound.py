"""Texts from contacts, through the signed ``/hooks/twilio/inbound`` webhook: replies, STOP/START/HELP
(contract §2.6), the ``wait_reply`` step's two exits and the workflow setting "stop on response"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.outbox.inbound import classify
from automations.store.models import Contact, DomainEvent, Enrollment, InboundMessage
from tests.delivery_fixtures import FROM_NUMBER, twilio_fixture, wire_fixture  # noqa: F401
from tests.factories import book, doc, log_lines, messages, publish

DANA = "+12125550123"
ASK = {"id": "ask", "type": "send_sms", "body": "Reply to confirm, {{contact.first_name}}"}
WAIT = {"id": "wait", "type": "wait_reply", "timeout": {"amount": 1, "unit": "days"},
        "on_reply": "thanks", "on_timeout": "nudge"}
THANKS = {"id": "thanks", "type": "send_sms", "body": "Thanks!", "next": "end"}
NUDGE = {"id": "nudge", "type": "send_sms", "body": "Still there?"}


def start(factory, clock, world, *steps, **settings):
    with factory() as s, s.begin():
        publish(s, world, doc(*steps, **settings), clock.now())
        book(s, world, clock.now(), calendar_id=world.static_calendar_id)


def enrollment(s) -> Enrollment:
    return s.scalars(select(Enrollment)).one()


def texts(twilio) -> list[str]:
    return [r.form["Body"][0] for r in twilio.api_requests("Messages")]


@pytest.mark.parametrize(("body", "opt_out_type", "dnd", "expected"), [
    ("STOP", None, False, "opt_out"), ("  stop \n", None, False, "opt_out"), ("Unsubscribe", None, False, "opt_out"),
    ("stopall", None, False, "opt_out"), ("quit", None, False, "opt_out"), ("Arrêt", "STOP", False, "opt_out"),
    ("stop please", None, False, "reply"), ("START", None, True, "opt_in"), ("unstop", None, True, "opt_in"),
    ("YES", None, True, "opt_in"), ("YES", None, False, "reply"), ("HELP", None, False, "help"),
    ("info", None, False, "help"), ("Hello", None, False, "reply"), ("", None, False, "reply"),
])
def test_keywords_count_only_as_the_whole_body(body, opt_out_type, dnd, expected):
    assert classify(body, opt_out_type, opted_out=dnd) == expected


def test_stop_opts_out_and_withdraws_pending_texts_then_start_clears(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, {"id": "later", "type": "send_sms", "body": "tomorrow"}, time_window={
        "start": "20:00", "end": "21:00"})  # held until 20:00 New York: still pending
    w.runtime.tick()
    with factory() as s:
        assert [m.status for m in messages(s)] == ["pending"]

    reply = w.inbound("Stop")
    assert reply.status_code == 200 and reply.mimetype == "text/xml"
    assert reply.get_data(as_text=True).endswith("<Response></Response>")  # HELP/STOP auto-replies are Twilio's
    with factory() as s:
        assert s.get(Contact, world.dana_id).sms_dnd is True
        (m,) = messages(s)
        assert m.status == "cancelled" and "opted out" in m.status_reason
        assert s.scalars(select(InboundMessage.intent)).all() == ["opt_out"]
    clock.advance(hours=12)
    w.runtime.tick()
    assert twilio.api_requests("Messages") == []  # never sent

    w.inbound("START")
    with factory() as s:
        assert s.get(Contact, world.dana_id).sms_dnd is False


def test_help_changes_nothing(factory, clock, world, wire):
    w = wire()
    start(factory, clock, world, ASK)
    w.runtime.tick()
    assert w.inbound("HELP").status_code == 200
    with factory() as s:
        assert s.get(Contact, world.dana_id).sms_dnd is False
        assert s.scalars(select(InboundMessage.intent)).all() == ["help"]


def test_inbound_is_idempotent_and_signature_checked(factory, clock, world, wire):
    w = wire()
    start(factory, clock, world, ASK)
    w.runtime.tick()
    form = {"MessageSid": "SM" + "a" * 32, "From": DANA, "To": FROM_NUMBER, "Body": "STOP"}
    tampered = w.client.post("/hooks/twilio/inbound", data=dict(form, From="+12125550999"),
                             headers={"X-Twilio-Signature": _sig(w, form)})
    assert tampered.status_code == 403
    assert w.client.post("/hooks/twilio/inbound", data=form).status_code == 403  # unsigned
    with factory() as s:
        assert s.get(Contact, world.dana_id).sms_dnd is False and s.scalars(select(InboundMessage)).all() == []
    assert w.post_signed("/hooks/twilio/inbound", form).status_code == 200
    assert w.post_signed("/hooks/twilio/inbound", form).status_code == 200  # Twilio retried
    with factory() as s:
        assert len(s.scalars(select(InboundMessage)).all()) == 1
        assert len(s.scalars(select(DomainEvent).where(DomainEvent.kind == "contact.replied")).all()) == 1
    assert w.post_signed("/hooks/twilio/inbound", {"Body": "no sid"}).status_code == 400


def _sig(w, form):
    from providers.twilio_signature import compute_signature
    from tests.delivery_fixtures import PUBLIC_URL

    return compute_signature(w.settings.twilio_auth_token, f"{PUBLIC_URL}/hooks/twilio/inbound", form)


def test_sends_to_an_opted_out_contact_are_skipped_with_a_reason(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, ASK)
    w.runtime.tick()
    w.inbound("STOP")
    with factory() as s, s.begin():
        book(s, world, clock.now(), calendar_id=world.static_calendar_id, start=clock.now() + timedelta(days=5))
    w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == 1  # only the first booking's text
    with factory() as s:
        second = s.scalars(select(Enrollment).order_by(Enrollment.created_at.desc(), Enrollment.id.desc())).first()
        assert ("ask", "skipped", "skipped: contact opted out of SMS") in log_lines(s, second.id)


def test_wait_reply_resumes_on_a_reply(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, ASK, WAIT, THANKS, NUDGE)
    w.runtime.tick()
    with factory() as s:
        e = enrollment(s)
        assert (e.state, e.wait_kind) == ("waiting", "reply")
        assert log_lines(s, e.id)[-1][2].startswith("waiting for a reply by sms until")
    clock.advance(minutes=5)
    w.inbound("HELP")  # a keyword is not an answer
    w.runtime.tick()
    with factory() as s:
        assert enrollment(s).state == "waiting"
    w.inbound("Yes, see you then")
    w.runtime.tick()
    assert texts(twilio) == ["Reply to confirm, Dana", "Thanks!"]
    with factory() as s:
        e = enrollment(s)
        assert e.state == "completed"
        assert ("wait", "resumed", "contact replied by sms: 'Yes, see you then'") in log_lines(s, e.id)


def test_wait_reply_times_out(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, ASK, WAIT, THANKS, NUDGE)
    w.runtime.tick()
    w.inbound("Hi", sender="+12125550999")  # someone else
    clock.advance(days=1)
    w.runtime.tick()
    assert texts(twilio) == ["Reply to confirm, Dana", "Still there?"]
    with factory() as s:
        assert ("wait", "resumed", "timed out waiting for a reply") in log_lines(s, enrollment(s).id)


def test_a_reply_before_the_wait_step_still_counts(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, ASK, {"id": "pause", "type": "wait_time_delay", "amount": 10, "unit": "minutes"},
          WAIT, THANKS, NUDGE)
    w.runtime.tick()
    clock.advance(minutes=5)
    w.inbound("ok!")
    w.runtime.tick()
    clock.advance(minutes=5)
    w.runtime.tick()
    assert texts(twilio) == ["Reply to confirm, Dana", "Thanks!"]
    with factory() as s:
        assert ("wait", "resumed", "contact replied by sms: 'ok!'") in log_lines(s, enrollment(s).id)


def test_stop_on_response_exits_the_enrollment(factory, clock, world, wire, twilio):
    w = wire()
    start(factory, clock, world, ASK, {"id": "pause", "type": "wait_time_delay", "amount": 1, "unit": "days"},
          {"id": "reminder", "type": "send_sms", "body": "Reminder"}, stop_on_response=True)
    w.runtime.tick()
    w.inbound("Can we move it to Friday?")
    w.runtime.tick()
    clock.advance(days=1)
    w.runtime.tick()
    assert texts(twilio) == ["Reply to confirm, Dana"]
    with factory() as s:
        e = enrollment(s)
        assert (e.state, e.exit_reason) == ("exited", "contact replied by sms (stop on response)")


def test_wait_reply_validation():
    from automations.documents.workflow_schema import load_document
    from automations.errors import ValidationError

    with pytest.raises(ValidationError) as info:
        load_document(doc({"id": "w", "type": "wait_reply", "channel": "fax", "on_reply": "nowhere"}))
    assert "steps[0].channel" in info.value.fields
    with pytest.raises(ValidationError) as info:
        load_document(doc({"id": "w", "type": "wait_reply", "on_reply": "nowhere"}))
    assert info.value.fields == {"steps[0].on_reply": ["no step with id 'nowhere'"]}
