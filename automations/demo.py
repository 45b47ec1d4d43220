"""``automations demo``: a demo location with two users, a round-robin calendar on Zoom (sandbox),
contacts, and the confirmation + reminders recipe imported and published."""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.booking import accounts, contacts, locations
from automations.documents import recipes
from automations.store.models import Calendar, CalendarMember, Location, User

DEMO_NAME = "Punctual Demo Clinic"
DEMO_RECIPE = "appointment-confirmation-reminders"
DEMO_EMAIL = "alice@demo-clinic.example"

AVAILABILITY = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def demo_password() -> str:
    """The demo admin's password: ``PUNCTUAL_DEMO_PASSWORD`` or a fixed demo value (demo data only)."""
    return os.environ.get("PUNCTUAL_DEMO_PASSWORD") or "punctual-demo"


def create_demo(session: Session, *, now: datetime, api_key: str | None = None) -> tuple[Location, str | None]:
    """Create the demo data once. Returns the location and a new API key (None if it existed)."""
    existing = session.scalar(select(Location).where(Location.name == DEMO_NAME))
    if existing is not None:
        return existing, None
    loc = Location(name=DEMO_NAME, timezone="America/New_York", email="hello@demo-clinic.example",
                   phone="+12125550100", address="1 Main St, New York, NY", website="https://demo-clinic.example",
                   custom_values={"support_phone": "+1 212 555 0100"}, custom_field_keys=["favorite_color"],
                   created_at=now)
    session.add(loc)
    session.flush()
    alice = User(location_id=loc.id, first_name="Alice", last_name="Admin", email=DEMO_EMAIL,
                 phone="+12125550101", timezone="America/New_York", role="admin", default_meeting_location="zoom",
                 created_at=now)
    bob = User(location_id=loc.id, first_name="Bob", last_name="Builder", email="bob@demo-clinic.example",
               phone="+12125550102", timezone="America/Chicago", role="user", default_meeting_location="zoom",
               created_at=now)
    accounts.set_password(alice, demo_password())
    session.add_all([alice, bob])
    session.flush()
    cal = Calendar(location_id=loc.id, name="Consultation", slug="consultation", kind="round_robin",
                   timezone="America/New_York", slot_minutes=30, appointments_per_slot=1, availability=AVAILABILITY,
                   meeting_location="Call us at +1 212 555 0100 if the video link does not work", created_at=now)
    cal.members = [CalendarMember(user_id=alice.id, position=0, meeting_location="zoom"),
                   CalendarMember(user_id=bob.id, position=1, meeting_location="zoom")]
    session.add(cal)
    for first, last, email, phone, tz in (
        ("Dana", "Contact", "dana@example.com", "+12125550123", "America/New_York"),
        ("Eli", "Customer", "eli@example.com", "+14155550188", "America/Los_Angeles"),
        ("Fatima", "Client", "fatima@example.co.uk", "+447700900123", "Europe/London"),
    ):
        contacts.create(session, loc, {"first_name": first, "last_name": last, "email": email, "phone": phone,
                                       "timezone": tz}, now=now)
    recipes.import_recipe(session, loc, DEMO_RECIPE, now=now, publish=True)
    key = locations.issue_key(session, loc, now=now, key=api_key or os.environ.get("PUNCTUAL_DEMO_API_KEY"))
    return loc, key
