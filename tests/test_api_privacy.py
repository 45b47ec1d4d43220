"""Privacy: erasing a contact (upcoming appointments cancelled through the booking domain so their
enrollments exit, unsent messages withdrawn, personal data gone from messages, replies and logs),
deleting an appointment, and exporting one contact's data as JSON."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from automations.store.models import Appointment, Contact, Enrollment, EnrollmentLog, Message
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

TABLES = (Contact, Appointment, Enrollment, EnrollmentLog, Message)


def _setup(factory, world, clock, runtime):
    """Dana booked two days out on a published workflow: confirmation sent, reminder waiting."""
    with factory() as s, s.begin():
        publish(s, world, confirmation_doc(), clock.now())
        past = book(s, world, clock.now() - timedelta(days=10), start=clock.now() - timedelta(days=7))
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=2))
        ids = appt.id, past.id
    runtime.tick()
    return ids


def test_export_has_everything_about_the_contact(api, factory, world, clock, runtime):
    appt_id, past_id = _setup(factory, world, clock, runtime)
    data = api.get(f"/contacts/{world.dana_id}/export")
    assert data.status_code == 200
    body = data.get_json()
    assert body["contact"]["email"] == "dana@example.com"
    assert {a["id"] for a in body["appointments"]} == {appt_id, past_id}
    assert body["enrollments"] and all(e["log"] for e in body["enrollments"])
    assert any(m["to"] == "dana@example.com" for m in body["messages"])
    assert all(m["contact_id"] == world.dana_id for m in body["messages"])


def test_erasing_a_contact(api, factory, world, clock, runtime):
    appt_id, past_id = _setup(factory, world, clock, runtime)
    with factory() as s:
        pending = s.scalars(select(Message).where(Message.contact_id == world.dana_id,
                                                  Message.status == "pending")).all()
    assert api.delete(f"/contacts/{world.dana_id}").status_code == 204
    runtime.tick()
    clock.advance(timedelta(days=3))
    runtime.tick()  # the reminder's time passes: nothing goes out

    assert api.get(f"/contacts/{world.dana_id}").status_code == 404
    assert api.get(f"/contacts/{world.dana_id}/export").status_code == 404
    assert world.dana_id not in {c["id"] for c in api.get("/contacts").get_json()["items"]}
    with factory() as s:
        dana = s.get(Contact, world.dana_id)
        assert (dana.first_name, dana.last_name, dana.email, dana.phone) == ("", "", None, None)
        assert s.get(Appointment, appt_id).status == "cancelled"  # through the booking domain: events fired
        assert s.get(Appointment, past_id).status != "cancelled"  # history stays history
        messages = s.scalars(select(Message).where(Message.contact_id == world.dana_id)).all()
        assert messages and all(m.to_address is None and m.body is None for m in messages)
        assert all(m.status != "sent" or m.sent_at <= clock.now() - timedelta(days=3) for m in messages)
        for m in pending:
            assert s.get(Message, m.id).status == "cancelled"
        enrollments = s.scalars(select(Enrollment).where(Enrollment.appointment_id == appt_id)).all()
        assert enrollments and all(e.state != "active" for e in enrollments)
        reasons = " ".join(s.scalars(select(EnrollmentLog.reason)).all())
        assert "dana@example.com" not in reasons and "Dana Contact" not in reasons
    audit = api.get(f"/audit?entity_id={world.dana_id}").get_json()["items"]
    assert audit[0]["action"] == "contacts.erase"
    # Booking the erased contact again is refused, naming the field.
    refused = api.post("/appointments", {"calendar_id": world.calendar_id, "contact_id": world.dana_id,
                                         "start_time": (clock.now() + timedelta(days=5)).isoformat()})
    assert refused.status_code == 422 and "contact_id" in error_fields(refused)


def test_deleting_an_appointment(api, factory, world, clock, runtime):
    appt_id, _past = _setup(factory, world, clock, runtime)
    assert api.delete(f"/appointments/{appt_id}").status_code == 204
    assert api.get(f"/appointments/{appt_id}").status_code == 404
    assert appt_id not in {a["id"] for a in api.get("/appointments").get_json()["items"]}
    runtime.tick()
    with factory() as s:
        assert s.get(Appointment, appt_id).status == "cancelled"
        assert not s.scalars(select(Message).where(Message.appointment_id == appt_id,
                                                   Message.status == "pending")).all()
        assert all(e.state != "active" for e in
                   s.scalars(select(Enrollment).where(Enrollment.appointment_id == appt_id)))
    assert api.delete(f"/appointments/{appt_id}").status_code == 404


def test_bad_ids_change_nothing(api, other_api, factory, world, other_world, clock, runtime):
    _setup(factory, world, clock, runtime)
    before = counts(factory, *TABLES)
    assert api.delete("/contacts/nope").status_code == 404
    assert api.delete("/appointments/" + "x" * 100).status_code == 404
    assert other_api.delete(f"/contacts/{world.dana_id}").status_code == 404  # another location's contact
    assert other_api.get(f"/contacts/{world.dana_id}/export").status_code == 404
    assert counts(factory, *TABLES) == before
    with factory() as s:
        assert s.get(Contact, world.dana_id).email == "dana@example.com"
