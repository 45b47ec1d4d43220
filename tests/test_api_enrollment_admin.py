"""Removing a contact from a workflow and moving an enrollment to a step, through the API: both
logged in the enrollment log (with the key that did it) and in the audit trail; the worker does the
running; over runs are 409, unknown steps 422, nothing half-saved."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from automations.store.models import Enrollment, EnrollmentLog, Message
from tests.factories import book, publish
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    counts,
    error_fields,
    other_api_fixture,
    other_world_fixture,
    spy_runtime_fixture,
    sqlite_only,
)


def _waiting(factory, world, clock, runtime) -> str:
    with factory() as s, s.begin():
        publish(s, world, confirmation_doc(), clock.now())
        book(s, world, clock.now(), start=clock.now() + timedelta(days=3))
    runtime.tick()
    with factory() as s:
        enrollment = s.scalar(select(Enrollment))
        assert enrollment.state == "waiting" and enrollment.step_id == "wait"
        return enrollment.id


def _emails(factory) -> int:
    with factory() as s:
        return len(s.scalars(select(Message).where(Message.channel == "email")).all())


def test_move_to_a_step_runs_it_again(api, factory, world, clock, runtime, spy_runtime):
    enrollment_id = _waiting(factory, world, clock, runtime)
    sent = _emails(factory)
    wakes = spy_runtime.wakes
    moved = api.post(f"/enrollments/{enrollment_id}/move", {"step_id": "confirm"})
    assert moved.status_code == 200
    body = moved.get_json()
    assert body["step_id"] == "confirm" and body["state"] == "active"
    assert "moved from step wait to step confirm by api_key" in body["log"][-1]["reason"]
    assert spy_runtime.wakes == wakes + 1
    runtime.tick()
    assert _emails(factory) == sent + 1  # the confirmation again, under a new idempotency key
    with factory() as s:
        assert s.get(Enrollment, enrollment_id).step_id == "wait"  # and on to the wait again
    assert api.get(f"/audit?entity_id={enrollment_id}").get_json()["items"][0]["action"] == "enrollments.move"


def test_remove_from_workflow(api, factory, world, clock, runtime):
    enrollment_id = _waiting(factory, world, clock, runtime)
    removed = api.post(f"/enrollments/{enrollment_id}/remove")
    assert removed.status_code == 200 and removed.get_json()["state"] == "exited"
    assert "removed from the workflow by api_key" in removed.get_json()["exit_reason"]
    clock.advance(timedelta(days=3))
    runtime.tick()
    with factory() as s:
        assert not s.scalars(select(Message).where(Message.channel == "sms")).all()  # the reminder never comes
    again = api.post(f"/enrollments/{enrollment_id}/remove")
    assert again.status_code == 409
    assert api.post(f"/enrollments/{enrollment_id}/move", {"step_id": "confirm"}).status_code == 409


def test_bad_moves_change_nothing(api, other_api, factory, world, other_world, clock, runtime):
    enrollment_id = _waiting(factory, world, clock, runtime)
    before = counts(factory, Enrollment, EnrollmentLog, Message)
    unknown = api.post(f"/enrollments/{enrollment_id}/move", {"step_id": "nope"})
    assert unknown.status_code == 422 and "step_id" in error_fields(unknown)
    assert "step_id" in error_fields(api.post(f"/enrollments/{enrollment_id}/move", {}))
    assert api.post("/enrollments/nope/move", {"step_id": "confirm"}).status_code == 404
    assert other_api.post(f"/enrollments/{enrollment_id}/remove").status_code == 404
    assert counts(factory, Enrollment, EnrollmentLog, Message) == before
    with factory() as s:
        assert s.get(Enrollment, enrollment_id).state == "waiting"
