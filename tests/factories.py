"""Test data that reads like the app: a location with two users, a round-robin Zoom calendar,
contacts, and helpers to publish a workflow document and book appointments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.booking import appointments, contacts, locations
from automations.documents import workflows
from automations.store.models import Calendar, CalendarMember, EnrollmentLog, Location, Message, User

API_KEY = "pk_test_location_one"


@dataclass
class World:
    location_id: str
    alice_id: str
    bob_id: str
    calendar_id: str
    static_calendar_id: str
    dana_id: str  # New York, email + phone
    eli_id: str  # Los Angeles, email only
    api_key: str = API_KEY


def make_world(session: Session, now: datetime, *, key: str = API_KEY, name: str = "Test Clinic") -> World:
    loc = Location(name=name, timezone="America/New_York", email="clinic@example.com", phone="+12125550100",
                   custom_values={"promo": "SPRING"}, custom_field_keys=["favorite_color"], created_at=now)
    session.add(loc)
    session.flush()
    alice = User(location_id=loc.id, first_name="Alice", last_name="Admin", email="alice@example.com",
                 phone="+12125550101", timezone="America/New_York", role="admin", created_at=now)
    bob = User(location_id=loc.id, first_name="Bob", last_name="Host", email="bob@example.com",
               phone="+12125550102", timezone="America/Chicago", created_at=now)
    session.add_all([alice, bob])
    session.flush()
    cal = Calendar(location_id=loc.id, name="Consultation", slug="consultation", kind="round_robin",
                   timezone="America/New_York", slot_minutes=30, appointments_per_slot=2,
                   meeting_location="Phone: +1 212 555 0100", created_at=now)
    cal.members = [CalendarMember(user_id=alice.id, position=0, meeting_location="zoom"),
                   CalendarMember(user_id=bob.id, position=1, meeting_location="zoom")]
    static = Calendar(location_id=loc.id, name="Walk-in", slug="walk-in", kind="unassigned",
                      timezone="America/New_York", meeting_location="https://meet.example.com/static-room", created_at=now)
    session.add_all([cal, static])
    dana = contacts.create(session, loc, {"first_name": "Dana", "last_name": "Contact", "email": "dana@example.com",
                                          "phone": "+12125550123", "timezone": "America/New_York"}, now=now)
    eli = contacts.create(session, loc, {"first_name": "Eli", "email": "eli@example.com",
                                         "timezone": "America/Los_Angeles"}, now=now)
    locations.issue_key(session, loc, now=now, key=key)
    session.flush()
    return World(loc.id, alice.id, bob.id, cal.id, static.id, dana.id, eli.id, key)


def publish(session: Session, world: World, document: dict, now: datetime):
    loc = session.get(Location, world.location_id)
    wf = workflows.create(session, loc, document, now=now)
    workflows.publish(session, wf, now=now)
    return wf


def book(session: Session, world: World, now: datetime, *, start: datetime | None = None, contact_id: str | None = None,
         calendar_id: str | None = None, **kw):
    loc = session.get(Location, world.location_id)
    return appointments.book(session, location=loc, calendar_id=calendar_id or world.calendar_id,
                             contact_id=contact_id or world.dana_id, start_at=start or now + timedelta(days=3), now=now, **kw)


def messages(session: Session, **where) -> list[Message]:
    query = select(Message).order_by(Message.created_at, Message.idempotency_key)
    for key, value in where.items():
        query = query.where(getattr(Message, key) == value)
    return list(session.scalars(query))


def log_lines(session: Session, enrollment_id: str) -> list[tuple[str | None, str, str]]:
    rows = session.scalars(select(EnrollmentLog).where(EnrollmentLog.enrollment_id == enrollment_id).order_by(EnrollmentLog.at, EnrollmentLog.id))
    return [(r.step_id, r.outcome, r.reason) for r in rows]


def doc(*steps: dict, statuses=("confirmed",), name: str = "Test workflow", **settings) -> dict:
    return {
        "version": 1,
        "name": name,
        "settings": settings,
        "triggers": [{"type": "appointment_status", "filters": {"statuses": list(statuses)}}],
        "steps": list(steps),
    }
