"""Contacts: create and update, phone numbers normalized to E.164, changes emitted as events."""

from __future__ import annotations

from datetime import datetime

import phonenumbers
from sqlalchemy.orm import Session

from automations.booking import domain_events
from automations.errors import ValidationError
from automations.rendering.timecalc import parse_tz
from automations.store.db import get_in_location
from automations.store.models import Contact, Location
from automations.store.states import EventKind

FIELDS = ("first_name", "last_name", "email", "phone", "timezone", "tags", "custom_fields", "sms_dnd", "email_dnd")


def normalize_phone(raw: str | None, region: str = "US", path: str = "phone") -> str | None:
    if raw in (None, ""):
        return None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        raise ValidationError.single(path, f"{raw!r} is not a phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise ValidationError.single(path, f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _clean(location: Location, data: dict) -> dict:
    out = {k: v for k, v in data.items() if k in FIELDS}
    if "phone" in out:
        out["phone"] = normalize_phone(out["phone"])
    if "timezone" in out:
        out["timezone"] = out["timezone"] or None  # "" means "no time zone of their own"
        if out["timezone"]:
            parse_tz(out["timezone"], "timezone")
    if "custom_fields" in out:
        unknown = set(out["custom_fields"]) - set(location.custom_field_keys or [])
        if unknown:
            raise ValidationError.single("custom_fields", f"not defined for this location: {', '.join(sorted(unknown))}")
    return out


def create(session: Session, location: Location, data: dict, *, now: datetime) -> Contact:
    contact = Contact(location_id=location.id, created_at=now, updated_at=now, tags=[], custom_fields={})
    for key, value in _clean(location, data).items():
        setattr(contact, key, value)
    session.add(contact)
    session.flush()
    return contact


def update(session: Session, location: Location, contact: Contact, data: dict, *, now: datetime) -> list[str]:
    changes = _clean(location, data)
    changed = [k for k, v in changes.items() if getattr(contact, k) != v]
    for key in changed:
        setattr(contact, key, changes[key])
    if changed:
        contact.updated_at = now
        domain_events.emit(session, location_id=location.id, kind=EventKind.CONTACT_UPDATED, now=now,
                           contact_id=contact.id, changed=changed)
    return changed


def get(session: Session, location_id: str, contact_id: str) -> Contact:
    return get_in_location(session, Contact, location_id, contact_id, "contact")
