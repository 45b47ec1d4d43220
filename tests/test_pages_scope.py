"""Sign-in, CSRF, throttling and location scoping: every page and every form post with another
location's ids is a 404, and no form input gives a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from automations.store.models import ApiKey, Enrollment, Message, Notification, Workflow
from tests.factories import book, publish
from tests.test_api_fixtures import confirmation_doc
from tests.test_pages_fixtures import (  # noqa: F401
    OTHER_EMAIL,
    PASSWORD,
    Browser,
    app_fixture,
    browser_fixture,
    signed_in_fixture,
    sqlite_only,
    two_worlds_fixture,
)
from web.pages import auth


@pytest.fixture(name="activity")
def activity_fixture(factory, clock, runtime, two_worlds) -> dict:
    """Location one has a published workflow, an appointment, an enrollment, messages, a notification."""
    one, _ = two_worlds
    with factory() as s, s.begin():
        wf = publish(s, one, confirmation_doc(), clock.now())
        book(s, one, clock.now())
    runtime.tick()
    with factory() as s:
        enrollment = s.scalar(select(Enrollment).where(Enrollment.workflow_id == wf.id))
        message = s.scalar(select(Message).where(Message.location_id == one.location_id))
        note = s.scalar(select(Notification).where(Notification.location_id == one.location_id))
        key = s.scalar(select(ApiKey).where(ApiKey.location_id == one.location_id))
        return {"wf": wf.id, "enrollment": enrollment.id, "message": message.id, "note": note.id if note else None,
                "key": key.id, "contact": one.dana_id, "calendar": one.calendar_id, "user": one.bob_id,
                "step": "confirm"}


def _urls(a: dict) -> tuple[list[str], list[str]]:
    w = a["wf"]
    gets = [f"/workflows/{w}", f"/workflows/{w}/settings", f"/workflows/{w}/enrollments", f"/workflows/{w}/versions",
            f"/workflows/{w}/versions/1", f"/workflows/{w}/export", f"/workflows/{w}/simulate",
            f"/workflows/{w}/steps/new", f"/workflows/{w}/steps/{a['step']}", f"/workflows/{w}/triggers/0",
            f"/enrollments/{a['enrollment']}", f"/contacts/{a['contact']}", f"/messages/{a['message']}"]
    posts = [f"/workflows/{w}/publish", f"/workflows/{w}/unpublish", f"/workflows/{w}/duplicate", f"/workflows/{w}/delete",
             f"/workflows/{w}/settings", f"/workflows/{w}/steps/{a['step']}", f"/workflows/{w}/steps/{a['step']}/up",
             f"/workflows/{w}/steps/{a['step']}/delete", f"/workflows/{w}/steps/{a['step']}/validate",
             f"/workflows/{w}/triggers/0", f"/workflows/{w}/triggers/0/delete",
             f"/settings/api-keys/{a['key']}/revoke", f"/settings/users/{a['user']}/role",
             f"/settings/calendars/{a['calendar']}/members/{a['user']}"]
    return gets, posts


def test_owner_sees_everything(signed_in, activity):
    gets, _ = _urls(activity)
    for url in gets:
        assert signed_in.get(url).status_code == 200, url


def test_another_locations_ids_are_404(app, activity, factory):
    other = Browser(app.test_client())
    other.sign_in(OTHER_EMAIL)
    gets, posts = _urls(activity)
    for url in gets:
        assert other.get(url).status_code == 404, url
    for url in posts:
        assert other.post(url, {"role": "admin", "kind": "none", "name": "x"}).status_code == 404, url
    if activity["note"]:
        assert other.post("/notifications/read", {"id": activity["note"]}).status_code == 404
    with factory() as s:  # nothing changed
        wf = s.get(Workflow, activity["wf"])
        assert wf.status == "published" and len(wf.draft["steps"]) == 4
        assert s.get(ApiKey, activity["key"]) is not None
    # Lists show only their own location's rows.
    for url in ("/workflows", "/outbox", "/contacts", "/"):
        html = other.get(url).get_data(as_text=True)
        assert activity["wf"] not in html and activity["contact"] not in html and activity["message"] not in html, url


def test_pages_need_sign_in(browser, activity):
    for url in ("/", "/workflows", f"/workflows/{activity['wf']}", "/outbox", "/settings"):
        r = browser.get(url)
        assert r.status_code == 302 and "/login" in r.headers["Location"], url


def test_wrong_password_then_throttled(browser, clock):
    for _ in range(auth.MAX_FAILURES):
        r = browser.post("/login", {"email": "alice@example.com", "password": "wrong password"})
        assert r.status_code == 422 and "Email or password is not right" in r.get_data(as_text=True)
    r = browser.post("/login", {"email": "alice@example.com", "password": PASSWORD})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.get_data(as_text=True)
    clock.advance(minutes=16)
    assert browser.post("/login", {"email": "alice@example.com", "password": PASSWORD}).status_code == 302


def test_forms_without_csrf_token_are_refused(signed_in, activity, factory):
    r = signed_in.client.post(f"/workflows/{activity['wf']}/unpublish")
    assert r.status_code == 400 and "This form expired" in r.get_data(as_text=True)
    with factory() as s:
        assert s.get(Workflow, activity["wf"]).status == "published"


def test_sign_out(signed_in):
    assert signed_in.post("/logout").status_code == 302
    assert signed_in.get("/workflows").status_code == 302


def test_a_user_is_not_an_admin(app, factory, clock, two_worlds):
    from automations.booking import accounts
    from automations.store.models import Location

    one, _ = two_worlds
    with factory() as s, s.begin():
        accounts.create_user(s, s.get(Location, one.location_id), email="uma@example.com", password=PASSWORD, now=clock.now())
    b = Browser(app.test_client())
    b.sign_in("uma@example.com")
    assert b.get("/settings/users").status_code == 403
    assert b.post("/settings", {"name": "Hijacked", "timezone": "UTC"}).status_code == 403
    assert b.get("/workflows").status_code == 200


HOSTILE = ["", " ", "x" * 5000, "<script>alert(1)</script>", "{{ 7*7 }}", "../../etc/passwd", "-1", "1e309",
           "9999999999999999999999", "\x00", "null", "[]", "{}", "ünïcødé"]


def test_no_form_input_gives_a_500(signed_in, activity):
    w = activity["wf"]
    fields = ["name", "type", "direction", "months", "days", "hours", "minutes", "if_past.action", "if_past.target",
              "body", "subject", "channel", "recipients", "emails", "amount", "unit", "window.days", "window.start",
              "filters.statuses", "filters.calendars", "filters.event_type", "settings.timezone_mode",
              "settings.time_window.start", "settings.meeting_link.wait_seconds", "tags", "timezone", "email", "phone",
              "role", "kind", "static", "password", "branches", "next", "target", "_type"]
    targets = [f"/workflows/{w}/steps/new?at=0&type=wait_appointment_time", f"/workflows/{w}/steps/new?at=9&type=send_sms",
               f"/workflows/{w}/steps/new?at=x&type=internal_notification", f"/workflows/{w}/steps/new?type=if_else",
               f"/workflows/{w}/steps/new?type=wait_time_delay", f"/workflows/{w}/steps/new?type=webhook",
               f"/workflows/{w}/steps/confirm", f"/workflows/{w}/steps/confirm/validate", f"/workflows/{w}/triggers/new",
               f"/workflows/{w}/settings", "/settings", "/settings/users", "/settings/api-keys", "/profile/meeting-location",
               "/profile/password", "/login", "/workflows", "/recipes/appointment-confirmation-reminders/import",
               f"/settings/calendars/{activity['calendar']}/members/{activity['user']}"]
    for value in HOSTILE:
        data = {f: value for f in fields}
        for url in targets:
            r = signed_in.post(url, data)
            assert r.status_code < 500, (url, value, r.get_data(as_text=True)[-500:])
        if value == "":
            continue
        for url in (f"/workflows/{w}/enrollments?status={value}&contact={value}&from={value}&page={value}",
                    f"/outbox?channel={value}&status={value}&page={value}", f"/contacts?q={value}&page={value}",
                    f"/workflows?tag={value}", f"/workflows/{w}/export?version={value}", f"/recipes?category={value}"):
            assert signed_in.get(url).status_code < 500, url
    assert signed_in.get("/workflows").status_code == 200  # failed sign-in attempts did not sign us out
