"""Engine → SMTP, end to end: a booking produces a real email received by a real SMTP server (aiosmtpd),
with the sender from the workflow settings, Reply-To, Cc/Bcc (invalid ones skipped), Message-ID, Date and
one-click List-Unsubscribe; one connection per batch; unsubscribing; the crash window for email."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations import wiring
from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.store.models import Contact, Enrollment
from providers.smtp import SmtpEmailSender
from tests.delivery_fixtures import PUBLIC_URL, smtp_fixture, twilio_fixture, wire_fixture  # noqa: F401
from tests.factories import book, doc, log_lines, messages, publish

EMAIL = {
    "id": "confirm", "type": "send_email", "subject": "Confirmed: {{calendar.name}}",
    "body": "Hi {{contact.first_name}}, see you {{appointment.only_start_date}}.",
    "html": "<p>Hi <b>{{contact.first_name}}</b></p>", "reply_to": "desk@clinic.example",
    "cc": ["office@clinic.example", "not an address"], "bcc": ["audit@clinic.example"],
}
SENDER = {"from_name": "Clinic Reminders", "from_email": "reminders@clinic.example"}


def start(factory, clock, world, *steps, contact_id=None, **settings):
    with factory() as s, s.begin():
        publish(s, world, doc(*(steps or (EMAIL,)), **{**SENDER, **settings}), clock.now())
        book(s, world, clock.now(), calendar_id=world.static_calendar_id, contact_id=contact_id)


def test_a_booking_produces_a_real_email_with_the_right_headers(factory, clock, world, wire, smtp):
    w = wire(smtp_url=smtp.url)
    start(factory, clock, world)
    w.runtime.tick()

    (received,) = smtp.messages
    msg = received["msg"]
    with factory() as s:
        (m,) = messages(s, channel="email")
    assert received["mail_from"] == "reminders@clinic.example"
    assert received["rcpt_tos"] == ["dana@example.com", "office@clinic.example", "audit@clinic.example"]
    assert msg["From"] == "Clinic Reminders <reminders@clinic.example>"
    assert msg["To"] == "dana@example.com"
    assert msg["Subject"] == "Confirmed: Walk-in"
    assert msg["Reply-To"] == "desk@clinic.example"
    assert msg["Cc"] == "office@clinic.example"  # the invalid one skipped, the valid one still went
    assert msg["Bcc"] is None
    # Derived from the outbox id (a resend carries the same one); the domain is the deployment's sender's.
    assert msg["Message-ID"] == f"<punctual.{m.id}@punctual.invalid>" == m.provider_id
    assert msg["Date"].datetime == clock.now()
    assert msg["Auto-Submitted"] == "auto-generated"
    unsubscribe = msg["List-Unsubscribe"]
    assert unsubscribe.startswith(f"<{PUBLIC_URL}/unsubscribe/") and unsubscribe.endswith(">")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    assert msg.get_body(("plain",)).get_content().startswith("Hi Dana, see you ")
    assert msg.get_body(("html",)).get_content().strip() == "<p>Hi <b>Dana</b></p>"
    assert (m.status, m.provider) == ("sent", "smtp")
    assert m.provider_detail["skipped"] == [{"field": "cc", "value": "not an address", "reason": "invalid address"}]

    # One-click unsubscribe: a mail client POSTs "List-Unsubscribe=One-Click" to the https URL.
    path = unsubscribe.strip("<>").removeprefix(PUBLIC_URL)
    assert w.client.get(path).status_code == 200  # the page: fetching it changes nothing
    with factory() as s:
        assert s.get(Contact, world.dana_id).email_dnd is False
    assert w.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert w.client.post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200  # idempotent
    assert w.client.post(path[:-3] + "abc").status_code == 404  # altered token
    with factory() as s:
        assert s.get(Contact, world.dana_id).email_dnd is True

    with factory() as s, s.begin():  # the next booking's email is skipped, with the reason logged
        book(s, world, clock.now(), calendar_id=world.static_calendar_id, start=clock.now() + timedelta(days=9))
    w.runtime.tick()
    assert len(smtp.messages) == 1
    with factory() as s:
        last = s.scalars(select(Enrollment).order_by(Enrollment.created_at.desc(), Enrollment.id.desc())).first()
        assert ("confirm", "skipped", "skipped: contact opted out of email") in log_lines(s, last.id)


def test_a_batch_shares_one_smtp_connection(factory, clock, world, wire, smtp):
    w = wire(smtp_url=smtp.url)
    with factory() as s, s.begin():
        publish(s, world, doc(EMAIL, {**EMAIL, "id": "second", "subject": "Second"}, **SENDER), clock.now())
        book(s, world, clock.now(), calendar_id=world.static_calendar_id)
        book(s, world, clock.now(), calendar_id=world.static_calendar_id, contact_id=world.eli_id,
             start=clock.now() + timedelta(days=4))
    w.runtime.tick()
    assert len(smtp.messages) == 4
    assert len({r["peer"] for r in smtp.messages}) == 1


def test_opting_out_after_queueing_skips_the_send(factory, clock, world, wire, smtp):
    w = wire(smtp_url=smtp.url)
    start(factory, clock, world, time_window={"start": "20:00", "end": "21:00"})  # pending until 20:00 New York
    w.runtime.tick()
    with factory() as s, s.begin():
        s.get(Contact, world.dana_id).email_dnd = True
    clock.advance(hours=12)
    w.runtime.tick()
    assert smtp.messages == []
    with factory() as s:
        (m,) = messages(s, channel="email")
        assert (m.status, m.status_reason) == ("cancelled", "withdrawn: contact opted out of email")
        lines = log_lines(s, s.scalars(select(Enrollment)).one().id)
        assert any(o == "skipped" and "opted out of email" in r for _, o, r in lines)


def test_a_refused_recipient_fails_and_alerts_the_admins_by_email_too(factory, clock, world, wire, smtp):
    w = wire(smtp_url=smtp.url)
    with factory() as s, s.begin():
        s.get(Contact, world.dana_id).email = "dana@bounce.test"
    start(factory, clock, world)
    w.runtime.tick()
    with factory() as s:
        (m,) = messages(s, channel="email", audience="contact")
        assert (m.status, m.error_code) == ("failed", "550")
    alert = [r["msg"] for r in smtp.messages if r["rcpt_tos"] == ["alice@example.com"]]
    assert len(alert) == 1 and "could not be delivered" in alert[0]["Subject"]
    assert "550" in alert[0].get_content() and alert[0]["List-Unsubscribe"] is None  # staff mail: no unsubscribe


class SimulatedCrash(BaseException):
    """The process dying right after the SMTP server said 250."""


class CrashAfterSend(SmtpEmailSender):
    def send_each(self, emails, proceed=None):
        for _ in super().send_each(emails, proceed):
            raise SimulatedCrash("killed between the provider call and the record")
        yield from ()


def test_crash_after_the_smtp_send_resends_with_the_same_message_id(factory, clock, world, smtp):
    """The documented window for email: no receipt exists, so the in-doubt email is sent again after the lease,
    with the same Message-ID, which receivers use to drop the copy."""
    settings = Settings(batch_size=100, smtp_url=smtp.url, public_url=PUBLIC_URL)
    providers = wiring.build_providers(settings, factory, clock=clock)
    providers.email = CrashAfterSend(smtp.url, default_from_email=settings.from_email)
    start(factory, clock, world)
    with pytest.raises(SimulatedCrash):
        Runtime(factory, clock=clock, settings=settings, providers=providers, owner="dead").tick()
    live = Runtime(factory, clock=clock, settings=settings, owner="live",
                   providers=wiring.build_providers(settings, factory, clock=clock))
    live.tick()
    assert len(smtp.messages) == 1
    clock.advance(seconds=settings.lease_seconds + 1)
    live.tick()
    assert len(smtp.messages) == 2
    assert smtp.messages[0]["msg"]["Message-ID"] == smtp.messages[1]["msg"]["Message-ID"]
    live.tick()
    assert len(smtp.messages) == 2
    with factory() as s:
        (m,) = messages(s, channel="email")
        assert (m.status, m.attempts) == ("sent", 2)


def test_factory_builds_senders_from_settings():
    email = wiring.email_sender(Settings(smtp_url="smtp+starttls://u%40x:p%3Aw@mail.example:2525"))
    assert isinstance(email, SmtpEmailSender)
    assert (email.config.host, email.config.port, email.config.security) == ("mail.example", 2525, "starttls")
    assert (email.config.username, email.config.password) == ("u@x", "p:w")
    assert wiring.email_sender(Settings()).name == "capture"
    twilio = Settings(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="t", twilio_from_number="+15005550006",
                      public_url="https://app.example")
    sms = wiring.sms_sender(twilio)
    voice = wiring.voice_caller(twilio)
    assert (sms.name, voice.name) == ("twilio", "twilio")
    assert sms.status_callback == voice.status_callback == "https://app.example/hooks/twilio/status"
    assert wiring.voice_caller(Settings()).name == "capture"
