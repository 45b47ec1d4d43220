"""The workflow time window (quiet hours): outbound sends outside it wait for its next opening; internal
notifications, webhooks and Slack are not held; a retry that drifts outside it waits again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automations.documents.workflow_schema import load_document
from automations.engine.runtime import Runtime
from automations.errors import RetryableProviderError, ValidationError
from automations.settings import Settings
from providers.bag import Providers
from providers.capture import CaptureSms
from tests.factories import book, doc, log_lines, messages, publish

SMS = {"id": "sms", "type": "send_sms", "body": "Hello"}
STAFF = {"id": "staff", "type": "internal_notification", "channel": "in_app", "recipients": "all_users", "body": "booked"}
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "17:00"}


def start(factory, clock, world, *steps, contact_id=None, **settings):
    with factory() as s, s.begin():
        publish(s, world, doc(*steps, **settings), clock.now())
        return book(s, world, clock.now(), calendar_id=world.static_calendar_id, contact_id=contact_id).id


def test_outbound_sends_wait_for_the_window_and_internal_ones_do_not(factory, runtime, clock, world):
    # 14:00 UTC on Monday 2026-11-02 is 09:00 in New York: the window opens at 10:00 (15:00 UTC).
    opens = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
    start(factory, clock, world, SMS, STAFF, time_window=WINDOW)
    runtime.tick()
    with factory() as s:
        sms, staffs = messages(s, channel="sms")[0], messages(s, channel="in_app")
        assert (sms.status, sms.due_at) == ("pending", opens)
        assert [m.status for m in staffs] == ["sent", "sent"]  # internal notifications are not outbound
        lines = log_lines(s, sms.enrollment_id)
        assert ("sms", "queued", f"SMS queued to +12125550123 (held for the workflow's time window until "
                                 f"{opens.isoformat()})") in lines
    clock.set(opens - timedelta(seconds=1))
    runtime.tick()
    with factory() as s:
        assert messages(s, channel="sms")[0].status == "pending"
    clock.set(opens)
    runtime.tick()
    with factory() as s:
        assert messages(s, channel="sms")[0].status == "sent"


def test_the_window_is_read_in_the_contacts_zone_when_the_workflow_says_so(factory, runtime, clock, world):
    # Eli is in Los Angeles: 06:00 there; the window opens at 10:00 PT = 18:00 UTC.
    start(factory, clock, world, {"id": "email", "type": "send_email", "subject": "s", "body": "b"},
          time_window=WINDOW, timezone_mode="contact", contact_id=world.eli_id)
    runtime.tick()
    with factory() as s:
        assert messages(s)[0].due_at == datetime(2026, 11, 2, 18, 0, tzinfo=UTC)


class FlakySms(CaptureSms):
    """Fails the first send with a transient error asking for a retry an hour later."""

    def __init__(self) -> None:
        self.calls = 0

    def send(self, sms):
        self.calls += 1
        if self.calls == 1:
            raise RetryableProviderError("busy", provider_code="20429", retry_after=3600)
        return super().send(sms)


def test_a_retry_outside_the_window_waits_for_the_next_opening(factory, clock, world):
    clock.set(datetime(2026, 11, 6, 21, 30, tzinfo=UTC))  # Friday 16:30 New York
    flaky = FlakySms()
    runtime = Runtime(factory, clock=clock, providers=Providers(sms=flaky), settings=Settings(batch_size=100))
    start(factory, clock, world, SMS, time_window=WINDOW)
    runtime.tick()
    with factory() as s:
        m = messages(s)[0]
        assert m.status == "pending" and m.due_at >= clock.now() + timedelta(hours=1)  # Retry-After honoured
    clock.set(m.due_at)  # 17:30 or later on Friday: closed until Monday 10:00
    runtime.tick()
    monday = datetime(2026, 11, 9, 15, 0, tzinfo=UTC)
    with factory() as s:
        m = messages(s)[0]
        assert (m.status, m.due_at, flaky.calls) == ("pending", monday, 1)
        assert "time window" in m.status_reason
    clock.set(monday)
    runtime.tick()
    with factory() as s:
        assert messages(s)[0].status == "sent" and flaky.calls == 2


def test_a_bad_window_is_refused_with_its_path():
    with pytest.raises(ValidationError) as info:
        load_document(doc(SMS, time_window={"days": ["mon"], "start": "25:00", "end": "17:00"}))
    assert list(info.value.fields) == ["settings.time_window.start"]
    with pytest.raises(ValidationError) as info:
        load_document(doc(SMS, time_window={"start": "09:00"}))
    assert list(info.value.fields) == ["settings.time_window.end"]
