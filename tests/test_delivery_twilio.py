"""Engine → Twilio, end to end: texts sent by the real ``twilio`` client to the fake Twilio REST server,
signed status callbacks from the fake to the Flask app, retries on the injected clock, permanent errors,
opt-outs (21610), the admin alert after the last attempt, and the send/record crash window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.store.models import Contact, Enrollment, Message, Notification
from automations.wiring import build_providers
from providers.base import OutgoingSms, SendResult
from providers.twilio_signature import compute_signature
from tests.delivery_fixtures import (  # noqa: F401
    FROM_NUMBER,
    PUBLIC_URL,
    smtp_fixture,
    twilio_fixture,
    wire_fixture,
)
from tests.factories import book, doc, log_lines, messages, publish

SMS = {"id": "sms", "type": "send_sms", "body": "Hi {{contact.first_name}}, see you soon",
       "media_urls": ["https://cdn.example.com/map.png"]}


def setup_booking(factory, clock, world, *steps, contact_phone: str | None = None, **settings):
    with factory() as s, s.begin():
        if contact_phone:
            s.get(Contact, world.dana_id).phone = contact_phone
        publish(s, world, doc(*(steps or (SMS,)), **settings), clock.now())
        return book(s, world, clock.now(), calendar_id=world.static_calendar_id).id


def only(s, **where) -> Message:
    rows = messages(s, **where)
    assert len(rows) == 1, rows
    return rows[0]


def test_sms_goes_out_through_twilio_and_signed_receipts_mark_it_delivered(factory, clock, world, wire, twilio):
    w = wire()
    setup_booking(factory, clock, world)
    w.runtime.tick()

    (request,) = twilio.api_requests("Messages")
    with factory() as s:
        m = only(s, channel="sms")
    assert request.auth == (twilio.account_sid, twilio.auth_token)
    assert request.form["To"] == ["+12125550123"]
    assert request.form["From"] == [FROM_NUMBER]
    assert request.form["Body"] == ["Hi Dana, see you soon"]
    assert request.form["MediaUrl"] == ["https://cdn.example.com/map.png"]
    assert request.form["StatusCallback"] == [f"{PUBLIC_URL}/hooks/twilio/status?m={m.id}"]
    assert (m.status, m.provider, m.provider_id[:2]) == ("sent", "twilio", "MM")  # MMS: it has media

    for raw, ours in (("queued", "sent"), ("sent", "sent"), ("delivered", "delivered"), ("sent", "delivered"),
                      ("delivered", "delivered")):
        callback = twilio.send_status_callback(m.provider_id, raw, via=w.live.base_url)
        assert callback.status_code == 204
        with factory() as s:
            row = s.get(Message, m.id)
            assert row.status == ours, raw  # a late "sent" never moves it back
    assert row.provider_status == "delivered"
    assert row.delivered_at == clock.now()
    assert [h["status"] for h in row.status_history] == ["queued", "sent", "delivered", "sent",
                                                                          "delivered"]
    body = w.client.get(f"/api/v1/messages/{m.id}", headers={"Authorization": f"Bearer {world.api_key}"}).json
    assert (body["status"], body["provider_status"]) == ("delivered", "delivered")


def test_messaging_service_sid_instead_of_a_from_number(factory, clock, world, wire, twilio):
    w = wire(twilio_from_number=None, twilio_messaging_service_sid="MG" + "1" * 32)
    setup_booking(factory, clock, world, {"id": "sms", "type": "send_sms", "body": "hello"})
    w.runtime.tick()
    (request,) = twilio.api_requests("Messages")
    assert request.form["MessagingServiceSid"] == ["MG" + "1" * 32] and "From" not in request.form


@pytest.mark.parametrize(("code", "meaning"), [
    (30003, "unreachable destination handset"), (30004, "blocked"), (30005, "unknown destination handset"),
    (30006, "landline"), (30007, "filtered"), (30008, "unknown error"),
])
def test_undelivered_receipts_show_the_error_code(factory, clock, world, wire, twilio, code, meaning):
    w = wire()
    setup_booking(factory, clock, world)
    w.runtime.tick()
    with factory() as s:
        sid = only(s, channel="sms").provider_id
    assert twilio.send_status_callback(sid, "undelivered", error_code=code, via=w.live.base_url).status_code == 204
    with factory() as s:
        m = only(s, channel="sms")
        assert (m.status, m.error_code) == ("undelivered", str(code))
        assert meaning in m.status_reason and str(code) in m.status_reason
        enrollment = s.scalars(select(Enrollment)).one()
        assert any(outcome == "undelivered" and str(code) in reason for _, outcome, reason in log_lines(s, enrollment.id))


def test_failed_receipt_alerts_the_admins(factory, clock, world, wire, twilio):
    w = wire()
    setup_booking(factory, clock, world)
    w.runtime.tick()
    with factory() as s:
        sid = only(s, channel="sms").provider_id
    twilio.send_status_callback(sid, "failed", error_code=30008, via=w.live.base_url)
    twilio.send_status_callback(sid, "failed", error_code=30008, via=w.live.base_url)  # Twilio retried it
    w.runtime.tick()
    with factory() as s:
        assert only(s, channel="sms").status == "failed"
        notes = s.scalars(select(Notification)).all()
        assert [n.user_id for n in notes] == [world.alice_id]  # the admin, once; Bob is not an admin


def test_opted_out_recipient_fails_at_once_and_is_opted_out(factory, clock, world, wire, twilio):
    steps = (SMS, {"id": "later", "type": "wait_time_delay", "amount": 1, "unit": "hours"},
             {"id": "again", "type": "send_sms", "body": "second"})
    w = wire()
    setup_booking(factory, clock, world, *steps, contact_phone="+15005550004")  # §2.4: 21610
    w.runtime.tick()
    with factory() as s:
        m = only(s, channel="sms")
        assert (m.status, m.error_code) == ("failed", "21610")
        assert "opted out" in m.status_reason
        assert s.get(Contact, world.dana_id).sms_dnd is True
        assert s.scalars(select(Notification)).all() == []  # the contact's choice, not an error to alert
    clock.advance(hours=1)
    w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == 1  # never sent again
    with factory() as s:
        lines = log_lines(s, s.scalars(select(Enrollment)).one().id)
        assert ("again", "skipped", "skipped: contact opted out of SMS") in lines
        assert any(outcome == "failed" and "21610" in reason for _, outcome, reason in lines)


def test_invalid_number_fails_at_once_with_the_reason(factory, clock, world, wire, twilio):
    w = wire()
    setup_booking(factory, clock, world, contact_phone="+15005550001")  # §2.4: 21211
    w.runtime.tick()
    w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == 1
    with factory() as s:
        m = only(s, channel="sms")
        assert (m.status, m.error_code, m.attempts) == ("failed", "21211", 1)
        assert "not a valid phone number" in m.status_reason
        alerts = messages(s, audience="user")
        assert {(a.channel, a.to_address) for a in alerts} == {("in_app", world.alice_id), ("email", "alice@example.com")}
        assert all(a.status == "sent" for a in alerts)


@pytest.mark.parametrize(("status", "code", "retry_after"), [(429, 20429, None), (503, None, None), (429, None, 120)])
def test_transient_failures_back_off_then_fail_after_the_last_attempt(factory, clock, world, wire, twilio, status,
                                                                      code, retry_after):
    w = wire()
    policy = w.runtime.delivery.retry
    twilio.fail_next(policy.max_attempts, status=status, code=code, retry_after=retry_after)
    setup_booking(factory, clock, world)
    w.runtime.tick()
    for attempt in range(1, policy.max_attempts):
        with factory() as s:
            m = only(s, channel="sms")
        assert (m.status, m.attempts) == ("pending", attempt)
        delay = (m.due_at - clock.now()).total_seconds()
        base = min(policy.cap_seconds, policy.base_seconds * 2 ** (attempt - 1))
        low = max(base * (1 - policy.jitter), retry_after or 0)
        assert low <= delay <= max(base * (1 + policy.jitter), retry_after or 0), (attempt, delay)
        clock.set(m.due_at - timedelta(seconds=1))
        assert w.runtime.tick()["deliveries"] == 0  # not before its time
        clock.set(m.due_at)
        w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == policy.max_attempts
    with factory() as s:
        m = only(s, channel="sms")
        assert m.status == "failed" and m.status_reason.startswith(f"failed after {policy.max_attempts} attempts")
        assert m.error_code == str(code or (20429 if status == 429 else 20000 + status))  # the fake's codes
        assert [n.user_id for n in s.scalars(select(Notification))] == [world.alice_id]
        assert "could not be delivered" in s.scalars(select(Notification)).one().title
    clock.advance(days=1)
    w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == policy.max_attempts


def test_a_transient_failure_then_success(factory, clock, world, wire, twilio):
    w = wire()
    twilio.fail_next(2, status=429, code=20429)
    setup_booking(factory, clock, world)
    for _ in range(3):
        w.runtime.tick()
        with factory() as s:
            clock.set(max(clock.now(), only(s, channel="sms").due_at))
    with factory() as s:
        m = only(s, channel="sms")
        assert (m.status, m.attempts, m.status_reason) == ("sent", 3, None)
        assert s.scalars(select(Notification)).all() == []


class SimulatedCrash(BaseException):
    """The process dying right after the provider call: not an Exception, so nothing in the engine catches it."""


class CrashAfterSend:
    """The real Twilio sender, then death before the result can be recorded."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name = inner.name
        self.status_callback = inner.status_callback

    def send(self, sms: OutgoingSms) -> SendResult:
        self.inner.send(sms)
        raise SimulatedCrash("killed between the provider call and the record")


def _crash_once(w, factory, clock, world):

    providers = build_providers(w.settings, factory, clock=clock)
    providers.sms = CrashAfterSend(providers.sms)
    crashing = wire_runtime(w, factory, clock, providers)
    setup_booking(factory, clock, world)
    with pytest.raises(SimulatedCrash):
        crashing.tick()
    with factory() as s:
        m = only(s, channel="sms")
        assert (m.status, m.provider_id, m.lease_owner) == ("sending", None, "crashing-worker")
    return m


def wire_runtime(w, factory, clock, providers):
    from automations.engine.runtime import Runtime

    return Runtime(factory, clock=clock, settings=w.settings, providers=providers, owner="crashing-worker")


def test_crash_between_send_and_record_is_reconciled_by_the_receipt(factory, clock, world, wire, twilio):
    w = wire()
    m = _crash_once(w, factory, clock, world)
    (request,) = twilio.api_requests("Messages")
    sid = next(iter(twilio.messages))
    # Twilio's first receipt names the outbox row in its URL: it binds the SID the worker never recorded.
    assert twilio.send_status_callback(sid, "sent", via=w.live.base_url).status_code == 204
    with factory() as s:
        row = s.get(Message, m.id)
        assert (row.status, row.provider_id, row.lease_owner) == ("sent", sid, None)
    clock.advance(seconds=w.settings.lease_seconds + 1)
    w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == 1  # not sent twice
    twilio.send_status_callback(sid, "delivered", via=w.live.base_url)
    with factory() as s:
        assert s.get(Message, m.id).status == "delivered"


def test_crash_without_a_receipt_is_resent_once_after_the_lease(factory, clock, world, wire, twilio):
    """The documented remaining window: no receipt reached us before the lease ran out, so the row is in doubt
    and is sent again (at least once). The copy's SID wins; a late receipt for the first SID changes nothing."""
    w = wire()
    m = _crash_once(w, factory, clock, world)
    first_sid = next(iter(twilio.messages))
    w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == 1  # still leased to the dead worker
    clock.advance(seconds=w.settings.lease_seconds + 1)
    w.runtime.tick()
    w.runtime.tick()
    assert len(twilio.api_requests("Messages")) == 2  # exactly one resend
    with factory() as s:
        row = s.get(Message, m.id)
        assert row.status == "sent" and row.provider_id != first_sid and row.attempts == 2
        assert row.resent_in_doubt == 1
    twilio.send_status_callback(first_sid, "undelivered", error_code=30003, via=w.live.base_url)
    with factory() as s:
        assert s.get(Message, m.id).status == "sent"


def test_status_hook_checks_signatures_and_never_500s(factory, clock, world, wire, twilio):
    w = wire()
    setup_booking(factory, clock, world)
    w.runtime.tick()
    with factory() as s:
        m = only(s, channel="sms")
    form = {"MessageSid": m.provider_id, "MessageStatus": "delivered", "AccountSid": twilio.account_sid}
    good = w.post_signed("/hooks/twilio/status", form)
    assert good.status_code == 204
    tampered = dict(form, MessageStatus="failed")
    sig = compute_signature(twilio.auth_token, f"{PUBLIC_URL}/hooks/twilio/status", form)
    assert w.post_signed("/hooks/twilio/status", tampered, signature=sig).status_code == 403
    elsewhere = compute_signature(twilio.auth_token, "https://evil.example/hooks/twilio/status", form)
    assert w.post_signed("/hooks/twilio/status", form, signature=elsewhere).status_code == 403
    assert w.client.post("/hooks/twilio/status", data=form).status_code == 403  # no signature
    assert w.post_signed("/hooks/twilio/status", form, query="?m=other").status_code == 204  # signed with the query
    other = w.post_signed("/hooks/twilio/status", form, signature="")
    assert other.status_code == 403
    unknown = w.post_signed("/hooks/twilio/status", {"MessageSid": "SM" + "f" * 32, "MessageStatus": "sent"})
    assert unknown.status_code == 204  # acknowledged, nothing to do
    assert w.post_signed("/hooks/twilio/status", {"Foo": "bar"}).status_code == 400
    too_long = w.post_signed("/hooks/twilio/status", {"MessageSid": "SM" + "1" * 200, "MessageStatus": "sent"})
    assert too_long.status_code == 400
    huge = w.client.post("/hooks/twilio/status", data={"Body": "x" * 70_000}, headers={"X-Twilio-Signature": "x"})
    assert huge.status_code == 413
    garbage = w.client.post("/hooks/twilio/status", data=b"\xff\xfe\x00garbage", content_type="application/json",
                            headers={"X-Twilio-Signature": "x"})
    assert garbage.status_code == 403
    with factory() as s:
        assert s.get(Message, m.id).status == "delivered"


def test_hooks_refuse_everything_without_a_configured_token(factory, clock, world, wire):
    w = wire(twilio_auth_token=None, twilio_account_sid=None)
    reply = w.client.post("/hooks/twilio/status", data={"MessageSid": "SM1", "MessageStatus": "sent"},
                          headers={"X-Twilio-Signature": "anything"})
    assert reply.status_code == 403


def test_internal_notifications_use_the_same_providers(factory, clock, world, wire, twilio, smtp):
    w = wire(smtp_url=smtp.url)
    steps = ({"id": "text", "type": "internal_notification", "channel": "sms", "recipients": "all_users",
              "body": "New booking: {{contact.name}}"},
             {"id": "mail", "type": "internal_notification", "channel": "email", "recipients": "custom",
              "emails": ["desk@clinic.example"], "subject": "Booked", "body": "{{contact.name}}"},
             {"id": "bell", "type": "internal_notification", "channel": "in_app", "recipients": "all_users",
              "body": "New booking"})
    setup_booking(factory, clock, world, *steps)
    w.runtime.tick()
    assert sorted(r.form["To"][0] for r in twilio.api_requests("Messages")) == ["+12125550101", "+12125550102"]
    assert all(r.form["StatusCallback"][0].startswith(f"{PUBLIC_URL}/hooks/twilio/status?m=")
               for r in twilio.api_requests("Messages"))
    assert [m["rcpt_tos"] for m in smtp.messages] == [["desk@clinic.example"]]
    assert smtp.messages[0]["msg"]["List-Unsubscribe"] is None  # staff mail carries no unsubscribe link
    with factory() as s:
        assert len(s.scalars(select(Notification)).all()) == 2
        assert {m.status for m in messages(s)} == {"sent"}
