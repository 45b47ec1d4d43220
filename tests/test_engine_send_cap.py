"""The send cap stops a runaway run; wait_reply keeps its state in enrollment columns (schema 0006)."""

from __future__ import annotations

from sqlalchemy import select

from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.store import migrate
from automations.store.models import Enrollment
from tests.delivery_fixtures import FROM_NUMBER, twilio_fixture, wire_fixture  # noqa: F401
from tests.factories import book, doc, log_lines, messages
from tests.test_engine_steps import publish_unchecked

SMS = {"id": "sms", "type": "send_sms", "body": "again"}
LOOP = (SMS, {"id": "back", "type": "goto", "target": "sms"})


def test_a_loop_that_slipped_through_stops_at_the_send_cap(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish_unchecked(s, world, doc(*LOOP), clock.now())
        book(s, world, clock.now())
    runtime.tick()
    with factory() as s:
        assert len(messages(s)) == Settings().max_sends_per_enrollment == 20
        e = s.scalars(select(Enrollment)).one()
        assert e.state == "exited" and e.sends == 20
        assert e.exit_reason.startswith("stopped: send cap reached (20 messages")
        assert log_lines(s, e.id)[-2][1] == "stopped"


def test_the_cap_is_a_setting(factory, clock, world, providers, monkeypatch):
    monkeypatch.setenv("PUNCTUAL_MAX_SENDS_PER_ENROLLMENT", "3")
    settings = Settings.from_env()
    assert settings.max_sends_per_enrollment == 3
    runtime = Runtime(factory, clock=clock, providers=providers, settings=settings, owner="t")
    with factory() as s, s.begin():
        publish_unchecked(s, world, doc(*LOOP), clock.now())
        book(s, world, clock.now())
    runtime.tick()
    with factory() as s:
        assert len(messages(s)) == 3


ASK = {"id": "ask", "type": "send_sms", "body": "Reply to confirm"}
WAIT = {"id": "wait", "type": "wait_reply", "timeout": {"amount": 1, "unit": "days"}}


def test_wait_reply_state_is_in_columns_and_migrates_both_ways(engine, factory, clock, world, wire):
    w = wire()
    with factory() as s, s.begin():
        publish_unchecked(s, world, doc(ASK, WAIT, SMS), clock.now())
        book(s, world, clock.now(), calendar_id=world.static_calendar_id)
    w.runtime.tick()
    with factory() as s:
        e = s.scalars(select(Enrollment)).one()
        assert (e.state, e.wait_kind, e.reply_channel, e.sends) == ("waiting", "reply", "sms", 1)
        since = e.reply_since
        assert since == clock.now()
    try:
        migrate.downgrade(engine, "0003")
        migrate.upgrade(engine, "0006")  # the data move: counts from the outbox, reply state from the log
    finally:
        migrate.upgrade(engine)
    with factory() as s:
        e = s.scalars(select(Enrollment)).one()
        assert (e.reply_channel, e.reply_since, e.sends) == ("sms", since, 1)
    clock.advance(minutes=5)
    w.inbound("Yes")
    w.runtime.tick()
    with factory() as s:
        e = s.scalars(select(Enrollment)).one()
        assert e.state == "completed" and e.reply_channel is None and e.reply_since is None
