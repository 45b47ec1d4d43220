"""The Zoom provider's credential and budget rules, against the fake Zoom over a socket: refresh with
rotation (ahead of expiry, and after a 401), one refresh per credential when two workers race,
``invalid_grant`` → broken + alert + fallback, the 100-per-UTC-day budget counted before each call and
deferred to 00:00 UTC (the midnight scheduler hook), 429 Retry-After, and the provider's typed errors."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from automations.engine import scheduler
from automations.errors import (
    MeetingConnectionBroken,
    MeetingDailyLimit,
    MeetingHostNotConnected,
    MeetingNotFound,
)
from automations.store.models import Appointment, Meeting, Notification, ZoomConnection
from automations.store.secrets_box import SecretsBox
from automations.zoom.provider import ZoomMeetings
from providers.base import MeetingRequest
from providers.sandbox_meetings import SandboxMeetings
from tests.factories import book
from tests.zoom_fixtures import (  # noqa: F401  (fixtures)
    FALLBACK,
    SECRET_KEY,
    browser_fixture,
    connect_ok,
    connection,
    fake_zoom_fixture,
    meeting_posts,
    messages_for,
    publish_link_workflow,
    token_grants,
    zoom_app_fixture,
    zoom_provider_fixture,
    zoom_runtime_fixture,
    zoom_settings_fixture,
)

LINK_SMS = {"id": "sms", "type": "send_sms", "body": "Join: {{appointment.meeting_location}}"}


def _book(factory, world, clock, start, user_id, **kw) -> str:
    with factory() as s, s.begin():
        return book(s, world, clock.now(), start=start, assigned_user_id=user_id, **kw).id


def _meeting(factory, appointment_id: str) -> Meeting:
    with factory() as s:
        return s.get(Meeting, s.get(Appointment, appointment_id).meeting_id)


def _notes(factory, user_id: str, title: str) -> list[Notification]:
    with factory() as s:
        return list(s.scalars(select(Notification).where(Notification.user_id == user_id, Notification.title == title)))


def _request(user_id: str, start: datetime, topic: str = "Consultation") -> MeetingRequest:
    return MeetingRequest(host_user_id=user_id, topic=topic, start_at=start, duration_minutes=30,
                          timezone="America/New_York")


# -- tokens ----------------------------------------------------------------------------------------------


def test_expired_access_token_is_refreshed_with_rotation_before_use(browser, fake_zoom, factory, world, clock,
                                                                    zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    box = SecretsBox(SECRET_KEY)
    old = connection(factory, world.alice_id)
    old_refresh = box.decrypt(old.refresh_token_enc)
    clock.advance(hours=2)  # the access token (1 hour) has expired
    appt = _book(factory, world, clock, clock.now() + timedelta(days=1), world.alice_id)
    zoom_runtime.tick()
    assert _meeting(factory, appt).status == "ready"
    (refresh,) = token_grants(fake_zoom, "refresh_token")
    assert refresh.form()["refresh_token"] == old_refresh
    new = connection(factory, world.alice_id)
    assert box.decrypt(new.refresh_token_enc) != old_refresh  # rotated, and the new pair stored
    assert new.expires_at == clock.now() + timedelta(seconds=3599)
    assert new.refresh_owner is None and new.refresh_expires_at is None  # lease released
    # The meeting was created with the new access token, never with the expired one.
    (post,) = meeting_posts(fake_zoom)
    assert post.headers["authorization"] == f"Bearer {box.decrypt(new.access_token_enc)}"


def test_a_401_refreshes_once_and_retries(browser, fake_zoom, factory, world, clock, zoom_provider):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    fake_zoom.expire_access_tokens(host.id)  # Zoom no longer takes it though we think it is fresh
    info = zoom_provider.create(_request(world.alice_id, clock.now() + timedelta(days=1)))
    assert info.join_url == fake_zoom.meetings_of(host.id)[0]["join_url"]
    assert len(token_grants(fake_zoom, "refresh_token")) == 1
    assert len(meeting_posts(fake_zoom)) == 2  # the refused one and the retry, both counted
    assert connection(factory, world.alice_id).budget_used == 2


def test_two_workers_refreshing_one_credential_make_one_refresh(browser, fake_zoom, factory, world, clock,
                                                                zoom_settings):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    clock.advance(hours=2)
    a_refreshing, b_waiting = threading.Event(), threading.Event()

    def b_sleep(seconds: float) -> None:
        b_waiting.set()  # B found A's refresh lease and is waiting for it
        threading.Event().wait(0.01)

    worker_a = ZoomMeetings.from_settings(zoom_settings, factory, clock=clock, owner="worker-a")
    worker_b = ZoomMeetings.from_settings(zoom_settings, factory, clock=clock, owner="worker-b", sleep=b_sleep)
    real_refresh = worker_a.client.refresh

    def slow_refresh(token, now=None):
        a_refreshing.set()
        assert b_waiting.wait(5), "worker B never waited for the lease"
        return real_refresh(token, now=now)

    worker_a.client.refresh = slow_refresh
    results: dict[str, object] = {}

    def run(name, provider, start):
        try:
            results[name] = provider.create(_request(world.alice_id, start))
        except Exception as exc:  # reported below
            results[name] = exc

    start = clock.now() + timedelta(days=1)
    ta = threading.Thread(target=run, args=("a", worker_a, start))
    ta.start()
    assert a_refreshing.wait(5)
    tb = threading.Thread(target=run, args=("b", worker_b, start + timedelta(hours=1)))
    tb.start()
    ta.join(10)
    tb.join(10)
    try:
        assert not ta.is_alive() and not tb.is_alive()
        assert all(hasattr(r, "join_url") for r in results.values()), results
        assert len(token_grants(fake_zoom, "refresh_token")) == 1
        assert len(fake_zoom.meetings_of(host.id)) == 2
        # Both used the one rotated token, which is what is stored.
        box = SecretsBox(SECRET_KEY)
        stored = box.decrypt(connection(factory, world.alice_id).access_token_enc)
        assert {p.headers["authorization"] for p in meeting_posts(fake_zoom)} == {f"Bearer {stored}"}
    finally:
        worker_a.client.close()
        worker_b.client.close()


def test_threads_of_one_worker_share_one_refresh(browser, fake_zoom, factory, world, clock, zoom_provider):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    clock.advance(hours=2)
    barrier = threading.Barrier(4)
    errors: list[Exception] = []

    def run(i: int) -> None:
        barrier.wait(5)
        try:
            zoom_provider.create(_request(world.alice_id, clock.now() + timedelta(days=1, hours=i)))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert errors == [] and len(fake_zoom.meetings_of(host.id)) == 4
    assert len(token_grants(fake_zoom, "refresh_token")) == 1


def test_invalid_grant_breaks_the_connection_alerts_the_user_and_messages_fall_back(
        browser, fake_zoom, factory, world, clock, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    publish_link_workflow(factory, world, clock, LINK_SMS)
    fake_zoom.invalidate_refresh_tokens(host.id)  # revoked, expired or rotated away at Zoom
    clock.advance(hours=2)
    appt = _book(factory, world, clock, clock.now() + timedelta(days=1), world.alice_id)
    zoom_runtime.tick()
    conn = connection(factory, world.alice_id)
    assert conn.status == "broken" and "invalid_grant" in conn.status_reason
    assert conn.access_token_enc is None and conn.refresh_token_enc is None
    assert len(_notes(factory, world.alice_id, "Reconnect your Zoom account")) == 1
    meeting = _meeting(factory, appt)
    assert meeting.status == "failed"
    (sms,) = messages_for(factory, appt)
    assert sms.status == "sent" and sms.body == f"Join: {FALLBACK}"  # never an empty link
    # Later bookings fail at once, without calling Zoom, and do not alert again.
    calls = len(fake_zoom.requests)
    later = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    zoom_runtime.tick()
    assert _meeting(factory, later).status == "failed" and len(fake_zoom.requests) == calls
    assert len(_notes(factory, world.alice_id, "Reconnect your Zoom account")) == 1
    api_user = browser.api("GET", f"/users/{world.alice_id}").get_json()
    assert api_user["zoom"]["status"] == "broken"
    # Reconnecting makes it work again.
    connect_ok(browser, world.alice_id, host)
    again = _book(factory, world, clock, clock.now() + timedelta(days=3), world.alice_id)
    zoom_runtime.tick()
    assert _meeting(factory, again).status == "ready"


def test_invalid_grant_under_hold_and_alert_policy_holds_the_message(browser, fake_zoom, factory, world, clock,
                                                                     zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    publish_link_workflow(factory, world, clock, LINK_SMS,
                          meeting_link={"policy": "hold_and_alert", "wait_seconds": 60})
    fake_zoom.invalidate_refresh_tokens(host.id)
    clock.advance(hours=2)
    appt = _book(factory, world, clock, clock.now() + timedelta(days=1), world.alice_id)
    zoom_runtime.tick()
    (sms,) = messages_for(factory, appt)
    assert sms.status == "pending" and "host alerted" in sms.status_reason and sms.body is None


# -- the daily budget ------------------------------------------------------------------------------------


def test_daily_limit_defers_to_utc_midnight_tells_the_host_once_then_runs(browser, fake_zoom, factory, world,
                                                                          clock, zoom_runtime):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    publish_link_workflow(factory, world, clock, LINK_SMS)
    fake_zoom.set_meeting_requests_today(host.id, 99)  # other apps used Zoom's budget today
    day = clock.now().date()
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    first = _book(factory, world, clock, clock.now() + timedelta(days=2), world.alice_id)
    zoom_runtime.tick()
    assert _meeting(factory, first).status == "ready"  # Zoom's 100th request of the day
    second = _book(factory, world, clock, clock.now() + timedelta(days=3), world.alice_id)
    zoom_runtime.tick()
    deferred = _meeting(factory, second)
    assert (deferred.status, deferred.next_attempt_at, deferred.attempts) == ("pending", midnight, 0)
    assert "deferred until" in deferred.error
    conn = connection(factory, world.alice_id)
    assert (conn.budget_day, conn.budget_used) == (day.isoformat(), 100)  # Zoom's answer overrides our count
    notes = _notes(factory, world.alice_id, "Zoom daily limit reached")
    assert len(notes) == 1 and "00:00 UTC" in notes[0].body
    # Our own count now refuses before calling Zoom; the host is not told twice.
    posts = len(meeting_posts(fake_zoom))
    third = _book(factory, world, clock, clock.now() + timedelta(days=4), world.alice_id)
    zoom_runtime.tick()
    assert len(meeting_posts(fake_zoom)) == posts
    assert _meeting(factory, third).next_attempt_at == midnight
    assert len(_notes(factory, world.alice_id, "Zoom daily limit reached")) == 1
    # The waiting messages are held, then (after the workflow's wait) fall back: never an empty link.
    clock.advance(minutes=16)
    zoom_runtime.tick()
    assert messages_for(factory, second)[0].body == f"Join: {FALLBACK}"
    # 00:00 UTC: the scheduler's midnight hook runs the deferred work with the new day's budget.
    clock.set(midnight)
    for hook in zoom_runtime.midnight_hooks:
        hook(clock.now())
    assert _meeting(factory, second).status == "ready" and _meeting(factory, third).status == "ready"
    conn = connection(factory, world.alice_id)
    assert (conn.budget_day, conn.budget_used) == (midnight.date().isoformat(), 2)
    assert fake_zoom.meeting_requests_today(host.id) == 2


def test_budget_is_counted_before_the_call_so_a_failure_never_undercounts(browser, fake_zoom, factory, world,
                                                                          clock, zoom_provider):
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    fake_zoom.fail_next(1, status=503)
    with pytest.raises(Exception) as failed:
        zoom_provider.create(_request(world.alice_id, clock.now() + timedelta(days=1)))
    assert failed.value.retryable
    assert connection(factory, world.alice_id).budget_used == 1
    zoom_provider.delete(world.alice_id, "123")  # already gone at Zoom: fine, and still counted
    assert connection(factory, world.alice_id).budget_used == 2


def test_own_budget_refuses_the_101st_request_without_calling_zoom(browser, fake_zoom, factory, world, clock,
                                                                   zoom_provider):
    connect_ok(browser, world.alice_id, fake_zoom.add_user())
    with factory() as s, s.begin():
        conn = s.scalar(select(ZoomConnection).where(ZoomConnection.user_id == world.alice_id))
        conn.budget_day, conn.budget_used = clock.now().date().isoformat(), 100
    with pytest.raises(MeetingDailyLimit) as deferred:
        zoom_provider.create(_request(world.alice_id, clock.now() + timedelta(days=1)))
    assert deferred.value.retry_at == datetime(2026, 11, 3, tzinfo=UTC)
    assert meeting_posts(fake_zoom) == []
    # Yesterday's count does not carry over.
    clock.advance(days=1)
    zoom_provider.create(_request(world.alice_id, clock.now() + timedelta(days=1)))
    assert connection(factory, world.alice_id).budget_used == 1


def test_midnight_job_is_scheduled_at_00_utc_and_calls_the_hook(zoom_runtime, clock):
    sched = scheduler.background(zoom_runtime)
    job = sched.get_job("midnight-utc")
    assert job is not None and str(job.trigger.timezone) == "UTC"
    fields = {f.name: str(f) for f in job.trigger.fields}
    assert (fields["hour"], fields["minute"]) == ("0", "0")
    assert zoom_runtime.meeting_jobs.midnight in zoom_runtime.midnight_hooks
    seen: list[datetime] = []
    zoom_runtime.midnight_hooks.append(seen.append)
    scheduler._midnight(zoom_runtime)  # what the cron job runs
    assert seen == [clock.now()]


def test_429_honours_retry_after(browser, fake_zoom, factory, world, clock, zoom_runtime):
    connect_ok(browser, world.alice_id, fake_zoom.add_user())
    fake_zoom.throttle(1, retry_after="30")
    appt = _book(factory, world, clock, clock.now() + timedelta(days=1), world.alice_id)
    zoom_runtime.tick()
    waiting = _meeting(factory, appt)
    assert (waiting.status, waiting.next_attempt_at, waiting.attempts) == ("pending", clock.now() + timedelta(seconds=30), 0)
    calls = len(fake_zoom.requests)
    clock.advance(seconds=29)
    zoom_runtime.tick()
    assert len(fake_zoom.requests) == calls and _meeting(factory, appt).status == "pending"
    clock.advance(seconds=1)
    zoom_runtime.tick()
    assert _meeting(factory, appt).status == "ready"


# -- the provider's typed errors ---------------------------------------------------------------------------


def test_provider_errors_are_typed(browser, fake_zoom, factory, world, clock, zoom_provider):
    request = _request(world.bob_id, clock.now() + timedelta(days=1))
    with pytest.raises(MeetingHostNotConnected):
        zoom_provider.create(request)
    host = fake_zoom.add_user()
    connect_ok(browser, world.alice_id, host)
    request = _request(world.alice_id, clock.now() + timedelta(days=1))
    info = zoom_provider.create(request)
    assert zoom_provider.ensure(world.alice_id, info.external_id, request) == info
    zoom_provider.update(world.alice_id, info.external_id, _request(world.alice_id, clock.now() + timedelta(days=2)))
    assert fake_zoom.meetings[int(info.external_id)]["start_time"] == (
        clock.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    fake_zoom.delete_meeting_externally(info.external_id)
    with pytest.raises(MeetingNotFound):
        zoom_provider.update(world.alice_id, info.external_id, request)
    with pytest.raises(MeetingNotFound):
        zoom_provider.ensure(world.alice_id, info.external_id, request)
    assert connection(factory, world.alice_id).budget_used == 3  # create, update, refused update; GETs are free
    fake_zoom.invalidate_refresh_tokens(host.id)
    clock.advance(hours=2)
    with pytest.raises(MeetingConnectionBroken) as broken:
        zoom_provider.create(request)
    assert broken.value.host_user_id == world.alice_id and not broken.value.retryable


def test_factory_picks_zoom_only_when_configured(factory, zoom_settings):
    from automations.settings import Settings
    from automations.wiring import meeting_provider

    assert isinstance(meeting_provider(Settings(), factory), SandboxMeetings)
    zoom = meeting_provider(zoom_settings, factory)
    try:
        assert isinstance(zoom, ZoomMeetings) and zoom.name == "zoom"
        assert zoom.client.redirect_uri == "http://punctual.test/integrations/zoom/callback"
    finally:
        zoom.client.close()
