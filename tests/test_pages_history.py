"""What happened, as the pages show it: the enrollment history's filters and pagination, the step log,
a message's status history with the provider's error, and the dashboard's chart and failures."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from automations.store.models import Enrollment, Message, ZoomConnection
from tests.factories import book, publish
from tests.test_api_fixtures import confirmation_doc
from tests.test_pages_fixtures import (  # noqa: F401
    app_fixture,
    browser_fixture,
    signed_in_fixture,
    sqlite_only,
    two_worlds_fixture,
)
from web.pages import history


def _activity(factory, clock, runtime, world, n=1):
    with factory() as s, s.begin():
        wf = publish(s, world, confirmation_doc(), clock.now())
        for i in range(n):
            book(s, world, clock.now(), start=clock.now() + timedelta(days=3, minutes=30 * (i // 2)),
                 contact_id=world.dana_id if i % 2 == 0 else world.eli_id)
    runtime.tick()
    return wf.id


def test_enrollment_history_filters_and_pages(signed_in, factory, clock, runtime, two_worlds, monkeypatch):
    one, _ = two_worlds
    monkeypatch.setattr(history, "PER_PAGE", 2)
    wid = _activity(factory, clock, runtime, one, n=5)
    page1 = signed_in.get(f"/workflows/{wid}/enrollments").get_data(as_text=True)
    assert "5 enrollments" in page1 and "Page 1 of 3" in page1 and "Older →" in page1
    assert "Times in America/New_York" in page1 and "EST" in page1  # next execution in the viewer's zone
    page3 = signed_in.get(f"/workflows/{wid}/enrollments?page=3").get_data(as_text=True)
    assert "Page 3 of 3" in page3 and "← Newer" in page3
    assert "2 enrollments" in signed_in.get(f"/workflows/{wid}/enrollments?contact=eli").get_data(as_text=True)
    assert "0 enrollments" in signed_in.get(f"/workflows/{wid}/enrollments?status=failed").get_data(as_text=True)
    assert "5 enrollments" in signed_in.get(f"/workflows/{wid}/enrollments?from=2026-11-02&to=2026-11-02").get_data(as_text=True)
    assert "0 enrollments" in signed_in.get(f"/workflows/{wid}/enrollments?from=2026-11-03").get_data(as_text=True)
    with factory() as s:
        eid = s.scalar(select(Enrollment.id).where(Enrollment.workflow_id == wid))
    log = signed_in.get(f"/enrollments/{eid}").get_data(as_text=True)
    assert "Step-by-step log" in log and "waiting until" in log and "confirm" in log


def test_message_status_history_and_dashboard_failures(signed_in, factory, clock, runtime, two_worlds):
    one, _ = two_worlds
    _activity(factory, clock, runtime, one)
    with factory() as s, s.begin():
        msg = s.scalar(select(Message).where(Message.channel == "email", Message.location_id == one.location_id))
        msg.status, msg.error_code, msg.status_reason = "failed", "30007", "carrier filtered"
        s.add(ZoomConnection(location_id=one.location_id, user_id=one.bob_id, zoom_user_id="zu-bob", status="broken",
                             status_reason="invalid_grant: reconnect", created_at=clock.now(), updated_at=clock.now()))
        mid = msg.id
    html = signed_in.get(f"/messages/{mid}").get_data(as_text=True)
    assert "queued" in html and "error 30007" in html and "carrier filtered" in html
    dash = signed_in.get("/").get_data(as_text=True)
    assert "<svg" in dash and "Messages per day by channel" in dash
    assert "Zoom broken" in dash and "invalid_grant: reconnect" in dash and "carrier filtered" in dash
    with factory() as s, s.begin():
        s.execute(update(Message).values(status="sent"))
    outbox = signed_in.get("/outbox?channel=email").get_data(as_text=True)
    assert "See you soon, Dana" in outbox and "Tomorrow:" not in outbox


def test_remove_and_move_from_the_history_pages(signed_in, factory, clock, runtime, two_worlds):
    one, _ = two_worlds
    wid = _activity(factory, clock, runtime, one, n=2)
    with factory() as s:
        first, second = s.scalars(select(Enrollment).order_by(Enrollment.created_at, Enrollment.id)).all()
        assert first.state == second.state == "waiting"
    listing = signed_in.get(f"/workflows/{wid}/enrollments").get_data(as_text=True)
    assert f"/enrollments/{first.id}/remove" in listing and "Move to step" in listing
    # Without the CSRF token nothing happens.
    assert signed_in.client.post(f"/enrollments/{first.id}/remove").status_code == 400
    r = signed_in.post(f"/enrollments/{first.id}/remove", {"back": "list"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/workflows/{wid}/enrollments")
    detail = signed_in.get(f"/enrollments/{second.id}").get_data(as_text=True)
    assert 'id="move"' in detail
    r = signed_in.post(f"/enrollments/{second.id}/move", {"step_id": "nope"})
    assert r.status_code == 302
    assert "Step: no step &#39;nope&#39;" in signed_in.get(f"/enrollments/{second.id}").get_data(as_text=True)
    r = signed_in.post(f"/enrollments/{second.id}/move", {"step_id": "confirm"})
    assert r.status_code == 302
    with factory() as s:
        removed, moved = s.get(Enrollment, first.id), s.get(Enrollment, second.id)
        assert removed.state == "exited" and "removed from the workflow by user alice@example.com" in removed.exit_reason
        assert moved.step_id == "confirm" and moved.state == "active"
    page = signed_in.get(f"/enrollments/{second.id}").get_data(as_text=True)
    assert "moved from step wait to step confirm by user alice@example.com" in page
    # Over runs refuse (409 in the API), shown as a message, not a 500.
    r = signed_in.post(f"/enrollments/{first.id}/remove")
    assert r.status_code == 302 and "already exited" in signed_in.get(f"/enrollments/{first.id}").get_data(as_text=True)
