"""Sends that must not happen (#8): just before a message about an appointment is handed to its provider,
delivery checks the appointment still warrants it — not cancelled, invalid or no-show, not moved away from the
time the message was about, the contact not opted out — and withdraws it with the reason otherwise. Held by
quiet hours, retrying, held for a meeting link, webhook retries, and a cancel landing mid-batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from automations.booking import appointments
from automations.engine.runtime import Runtime
from automations.errors import RetryableProviderError
from automations.settings import Settings
from automations.store.models import Appointment, Contact, Message
from providers.capture import CaptureSms
from tests.conftest import local_providers
from tests.factories import book, doc, log_lines, messages, publish
from tests.fakes.slack_server import WebhookReceiver

SMS = {"id": "sms", "type": "send_sms", "body": "See you {{appointment.start_time}}"}
LINK_SMS = {"id": "sms", "type": "send_sms", "body": "Join: {{appointment.meeting_location}}"}
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "17:00"}
OPENS = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 10:00 New York on the test's Monday


class RecordingSms(CaptureSms):
    def __init__(self, fail_first: int = 0, on_send=None) -> None:
        self.sent: list[str] = []
        self.fail_first = fail_first
        self.on_send = on_send

    def send(self, sms):
        if self.on_send is not None:
            self.on_send(sms)
        if self.fail_first:
            self.fail_first -= 1
            raise RetryableProviderError("busy", provider_code="20429", retry_after=60)
        self.sent.append(sms.message_id)
        return super().send(sms)


def _runtime(factory, clock, **providers) -> Runtime:
    return Runtime(factory, clock=clock, providers=local_providers(**providers), settings=Settings(batch_size=100),
                   owner="worker")


def _start(factory, clock, world, *steps, calendar=None, statuses=("confirmed",), **settings) -> str:
    with factory() as s, s.begin():
        publish(s, world, doc(*steps, statuses=statuses, **settings), clock.now())
        return book(s, world, clock.now(), calendar_id=calendar or world.static_calendar_id).id


def _cancel(factory, clock, appt_id: str, status: str = "cancelled") -> None:
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, appt_id), status, modified_by="api", now=clock.now())


def _only(factory) -> Message:
    with factory() as s:
        (m,) = messages(s, channel="sms")
        return m


def test_a_text_held_by_quiet_hours_is_withdrawn_after_a_cancel(factory, clock, world):
    sms = RecordingSms()
    runtime = _runtime(factory, clock, sms=sms)
    appt_id = _start(factory, clock, world, SMS, time_window=WINDOW)
    runtime.tick()  # queued, held until 10:00; the one-step enrollment has completed
    _cancel(factory, clock, appt_id)
    runtime.tick()
    clock.set(OPENS)
    runtime.tick()
    m = _only(factory)
    assert sms.sent == []
    assert (m.status, m.status_reason) == ("cancelled", "withdrawn: the appointment is cancelled")
    with factory() as s:
        assert ("sms", "skipped", "sms to +12125550123 withdrawn: the appointment is cancelled") in [
            (line[0] or "sms", line[1], line[2]) for line in log_lines(s, m.enrollment_id)]


def test_a_held_text_is_withdrawn_when_the_appointment_moved_or_ended(factory, clock, world):
    sms = RecordingSms()
    runtime = _runtime(factory, clock, sms=sms)
    moved = _start(factory, clock, world, SMS, time_window=WINDOW)
    with factory() as s, s.begin():
        noshow = book(s, world, clock.now(), calendar_id=world.static_calendar_id,
                      start=clock.now() + timedelta(days=6)).id
    runtime.tick()
    with factory() as s, s.begin():
        appt = s.get(Appointment, moved)
        appointments.reschedule(s, appt, start_at=appt.start_at + timedelta(days=1), end_at=None,
                                modified_by="api", now=clock.now())
    _cancel(factory, clock, noshow, status="noshow")
    clock.set(OPENS)
    runtime.tick()
    with factory() as s:
        held = {m.appointment_id: m for m in s.scalars(select(Message).where(Message.status == "cancelled"))}
    assert held[moved].status_reason.startswith("withdrawn: the appointment moved from ")
    assert held[noshow].status_reason == "withdrawn: the appointment is noshow"
    assert not {m.id for m in held.values()} & set(sms.sent)


def test_a_retrying_text_is_not_sent_again_after_a_cancel(factory, clock, world):
    sms = RecordingSms(fail_first=1)
    runtime = _runtime(factory, clock, sms=sms)
    appt_id = _start(factory, clock, world, SMS)
    runtime.tick()
    assert _only(factory).status == "pending"  # retrying in a minute
    _cancel(factory, clock, appt_id)
    clock.advance(minutes=5)
    runtime.tick()
    assert sms.sent == [] and _only(factory).status_reason == "withdrawn: the appointment is cancelled"


def test_a_text_held_for_its_meeting_link_is_withdrawn_after_a_cancel(factory, clock, world, providers):
    providers.meetings.hold = True
    sms = RecordingSms()
    runtime = _runtime(factory, clock, sms=sms, meetings=providers.meetings)
    appt_id = _start(factory, clock, world, LINK_SMS, calendar=world.calendar_id)
    runtime.tick()
    assert _only(factory).status_reason == "waiting for the meeting link"
    _cancel(factory, clock, appt_id)
    clock.advance(hours=1)  # past hold_until: the old code sent it with the fallback
    runtime.tick()
    assert sms.sent == [] and _only(factory).status_reason == "withdrawn: the appointment is cancelled"


def test_webhook_retries_stop_after_a_cancel(factory, clock, world):
    runtime = _runtime(factory, clock)
    with WebhookReceiver() as hook:
        hook.respond(503, "busy")
        appt_id = _start(factory, clock, world, {"id": "hook", "type": "webhook", "url": hook.url(), "body": "hi"})
        runtime.tick()
        assert len(hook.requests) == 1
        _cancel(factory, clock, appt_id)
        clock.advance(hours=2)
        runtime.tick()
        assert len(hook.requests) == 1
    with factory() as s:
        (m,) = messages(s, channel="webhook")
    assert (m.status, m.status_reason) == ("cancelled", "withdrawn: the appointment is cancelled")


def _two_texts_with_a_change_between(factory, clock, world, change) -> tuple[list, list]:
    """Two texts to Dana claimed together; while the first is with the provider, ``change(session, mine)`` runs."""
    def meanwhile(sms_envelope):
        with factory() as s, s.begin():
            change(s, s.get(Message, sms_envelope.message_id).appointment_id)

    sms = RecordingSms(on_send=meanwhile)
    runtime = _runtime(factory, clock, sms=sms)
    with factory() as s, s.begin():
        publish(s, world, doc(SMS), clock.now())
        book(s, world, clock.now(), calendar_id=world.static_calendar_id)
        book(s, world, clock.now(), calendar_id=world.static_calendar_id, start=clock.now() + timedelta(days=5))
    runtime.run_events(clock.now())
    runtime.run_enrollments(clock.now())
    runtime.run_deliveries(clock.now())
    with factory() as s:
        return sms.sent, sorted((m.status, m.status_reason or "") for m in messages(s, channel="sms"))


def test_a_cancel_landing_while_the_batch_is_sending_stops_the_rest(factory, clock, world):
    """Both texts are claimed together; while the first is with the provider the other appointment is
    cancelled. The check made just before each send withdraws the second."""
    def cancel_the_other(s, mine):
        for appt in s.scalars(select(Appointment).where(Appointment.id != mine, Appointment.status == "confirmed")):
            appointments.change_status(s, appt, "cancelled", modified_by="api", now=clock.now())

    sent, statuses = _two_texts_with_a_change_between(factory, clock, world, cancel_the_other)
    assert len(sent) == 1
    assert statuses == [("cancelled", "withdrawn: the appointment is cancelled"), ("sent", "")]


def test_a_move_landing_while_the_batch_is_sending_withdraws_the_rest(factory, clock, world):
    """The check just before each send reads the appointment's current start (in the lease's own statement)."""
    def move_the_other(s, mine):
        other = s.scalars(select(Appointment).where(Appointment.id != mine)).one()
        appointments.reschedule(s, other, start_at=other.start_at + timedelta(hours=2), end_at=None,
                                modified_by="api", now=clock.now(), override_hours=True)

    sent, statuses = _two_texts_with_a_change_between(factory, clock, world, move_the_other)
    assert len(sent) == 1
    assert [st for st, _ in statuses] == ["cancelled", "sent"]
    assert statuses[0][1].startswith("withdrawn: the appointment moved from ")


def test_an_opt_out_landing_while_the_batch_is_sending_withdraws_the_rest(factory, clock, world):
    def opt_out(s, _mine):
        s.get(Contact, world.dana_id).sms_dnd = True

    sent, statuses = _two_texts_with_a_change_between(factory, clock, world, opt_out)
    assert len(sent) == 1
    assert statuses == [("cancelled", "withdrawn: contact opted out of SMS"), ("sent", "")]


def test_a_message_written_about_a_cancellation_still_goes_out(factory, clock, world):
    sms = RecordingSms()
    runtime = _runtime(factory, clock, sms=sms)
    appt_id = _start(factory, clock, world, {"id": "sorry", "type": "send_sms", "body": "Sorry to see you go"},
                     statuses=("cancelled",))
    runtime.tick()
    _cancel(factory, clock, appt_id)
    runtime.tick()
    assert len(sms.sent) == 1 and _only(factory).status == "sent"


def test_an_opt_out_after_queueing_withdraws_at_send_time(factory, clock, world):
    sms = RecordingSms()
    runtime = _runtime(factory, clock, sms=sms)
    _start(factory, clock, world, SMS, time_window=WINDOW)
    runtime.tick()
    with factory() as s, s.begin():
        s.get(Contact, world.dana_id).sms_dnd = True
    clock.set(OPENS)
    runtime.tick()
    assert sms.sent == [] and _only(factory).status_reason == "withdrawn: contact opted out of SMS"
