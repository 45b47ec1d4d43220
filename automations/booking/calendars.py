"""Calendars people book: create, edit and delete each kind, their members (meeting location,
priority) and availability. The API and the builder pages call these; each raises our
``ValidationError`` naming the field, so a bad request never half-saves.

Kinds: ``personal`` (one host), ``round_robin`` (rotates among free members), ``collective`` (every
member free, one meeting for all), ``class`` (one host, many attendees up to ``appointments_per_slot``),
``unassigned`` (no host; the static location).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.booking import availability
from automations.errors import Conflict, NotFound, ValidationError
from automations.rendering import merge_fields
from automations.rendering.timecalc import parse_tz
from automations.store.db import get_row
from automations.store.models import Appointment, Calendar, CalendarMember, Location, User

KINDS = availability.KINDS
#: Settings the API may set directly (validated by its schema for type and range).
SETTINGS = ("name", "kind", "timezone", "slot_minutes", "slot_interval_minutes", "buffer_before_minutes",
            "buffer_after_minutes", "min_notice_minutes", "booking_window_days", "appointments_per_slot",
            "auto_confirm", "title_template", "description", "meeting_location")
MAX_MEMBERS = 50
MAX_LOCATION = 1000
ZOOM = "zoom"


def slugify(text: str) -> str:
    """ASCII, lower case, dashes: ``Café Consultation`` → ``cafe-consultation``."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")[:100] or "calendar"


def _unique_slug(session: Session, location_id: str, wanted: str, exclude_id: str | None = None) -> str:
    taken = set(session.scalars(select(Calendar.slug).where(Calendar.location_id == location_id,
                                                            Calendar.id != (exclude_id or ""))))
    slug, n = wanted, 2
    while slug in taken:
        slug = f"{wanted[:95]}-{n}"
        n += 1
    return slug


def normalize_location(value: str | None, path: str) -> str | None:
    """``zoom`` (any case), a static link or text, or None (empty is none)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.lower() == ZOOM:
        return ZOOM
    if len(text) > MAX_LOCATION:
        raise ValidationError.single(path, f"must be at most {MAX_LOCATION} characters")
    return text


def _apply_settings(session: Session, cal: Calendar, data: dict[str, Any]) -> None:
    for key in SETTINGS:
        if key in data:
            setattr(cal, key, data[key])
    if "timezone" in data and data["timezone"]:
        parse_tz(data["timezone"], "timezone")
    if "meeting_location" in data:
        cal.meeting_location = normalize_location(data["meeting_location"], "meeting_location")
    if "title_template" in data and data["title_template"]:
        template = data["title_template"]
        location = get_row(session, Location, cal.location_id)
        known = merge_fields.KnownPaths.for_location(location.custom_field_keys, (location.custom_values or {}).keys())
        problems = merge_fields.validate(template) + [
            f"unknown merge field {p}" for p in merge_fields.unknown_paths(merge_fields.paths(template), known)]
        if problems:
            raise ValidationError.single("title_template", "; ".join(problems))
    if "availability" in data:
        cal.availability = availability.parse_weekly(data["availability"], "availability")
    if "date_overrides" in data:
        cal.date_overrides = availability.parse_overrides(data["date_overrides"], "date_overrides")
    if cal.kind not in KINDS:
        raise ValidationError.single("kind", f"must be one of {', '.join(KINDS)}")
    if cal.slot_interval_minutes is not None and cal.slot_interval_minutes <= 0:
        raise ValidationError.single("slot_interval_minutes", "must be positive")


def _check_kind(cal: Calendar) -> None:
    count = len(cal.members)
    if cal.kind == "unassigned" and count:
        raise ValidationError.single("members", "an unassigned calendar has no members (it uses the static location)")
    if cal.kind == "personal" and count != 1:
        raise ValidationError.single("members", "a personal calendar has exactly one member")
    if cal.kind in ("round_robin", "collective", "class") and not count:
        raise ValidationError.single("members", f"a {cal.kind.replace('_', ' ')} calendar needs at least one member")


def _members(session: Session, location_id: str, items: list[dict]) -> list[CalendarMember]:
    if len(items) > MAX_MEMBERS:
        raise ValidationError.single("members", f"at most {MAX_MEMBERS} members")
    ids = [m["user_id"] for m in items]
    users = set(session.scalars(select(User.id).where(User.id.in_(ids), User.location_id == location_id)))
    out, seen = [], set()
    for i, item in enumerate(items):
        path = f"members[{i}]"
        if item["user_id"] not in users:
            raise ValidationError.single(f"{path}.user_id", f"no user with id {item['user_id']!r} in this location")
        if item["user_id"] in seen:
            raise ValidationError.single(f"{path}.user_id", "listed twice")
        seen.add(item["user_id"])
        member = CalendarMember(user_id=item["user_id"], position=i, priority=item.get("priority") or 0,
                                meeting_location=normalize_location(item.get("meeting_location"),
                                                                    f"{path}.meeting_location"))
        if item.get("availability") is not None:
            member.availability = availability.parse_weekly(item["availability"], f"{path}.availability")
        if item.get("date_overrides") is not None:
            member.date_overrides = availability.parse_overrides(item["date_overrides"], f"{path}.date_overrides")
        out.append(member)
    return out


def create(session: Session, location: Location, data: dict[str, Any], *, now: datetime) -> Calendar:
    cal = Calendar(location_id=location.id, kind="round_robin", slot_minutes=30, appointments_per_slot=1,
                   auto_confirm=True, availability={}, date_overrides={}, buffer_before_minutes=0,
                   buffer_after_minutes=0, min_notice_minutes=0, description="", created_at=now)
    _apply_settings(session, cal, data)
    cal.timezone = cal.timezone or location.timezone
    cal.slug = _unique_slug(session, location.id, slugify(data.get("slug") or cal.name))
    if data.get("slug") and cal.slug != slugify(data["slug"]):
        raise ValidationError.single("slug", "already used by another calendar in this location")
    cal.members = _members(session, location.id, data.get("members") or [])
    _check_kind(cal)
    session.add(cal)
    session.flush()
    return cal


def update(session: Session, cal: Calendar, data: dict[str, Any], *, now: datetime) -> Calendar:
    _apply_settings(session, cal, data)
    if data.get("slug"):
        wanted = slugify(data["slug"])
        if _unique_slug(session, cal.location_id, wanted, exclude_id=cal.id) != wanted:
            raise ValidationError.single("slug", "already used by another calendar in this location")
        cal.slug = wanted
    if "members" in data:
        set_members(session, cal, data["members"])
    _check_kind(cal)
    session.flush()
    return cal


def set_members(session: Session, cal: Calendar, items: list[dict]) -> None:
    """Replace the member list (order = position), keeping nothing stale."""
    cal.members.clear()
    session.flush()
    cal.members.extend(_members(session, cal.location_id, items))
    _check_kind(cal)
    session.flush()


def set_member_availability(session: Session, cal: Calendar, user_id: str, *, weekly: Any = None,
                            overrides: Any = None) -> CalendarMember:
    """A member's own weekly hours (their time zone) and date overrides; None falls back to the calendar's."""
    member = next((m for m in cal.members if m.user_id == user_id), None)
    if member is None:
        raise NotFound(f"user {user_id!r} is not a member of this calendar")
    member.availability = None if weekly is None else availability.parse_weekly(weekly, "availability")
    member.date_overrides = None if overrides is None else availability.parse_overrides(overrides, "date_overrides")
    session.flush()
    return member


def delete(session: Session, cal: Calendar) -> None:
    """Delete a calendar that has no appointments (their history and reminders depend on it)."""
    used = session.scalar(select(func.count()).select_from(Appointment).where(Appointment.calendar_id == cal.id))
    if used:
        raise Conflict(f"the calendar has {used} appointment(s); cancel or move them, then delete it",
                       fields={"calendar_id": ["has appointments"]})
    session.delete(cal)
    session.flush()


def by_slug(session: Session, location_slug: str, calendar_slug: str) -> tuple[Location, Calendar]:
    """The public booking page's calendar: location by its slug (or id, or its name's slug), then calendar."""
    location = session.scalar(select(Location).where(Location.slug == location_slug))
    if location is None and len(location_slug) <= 64:
        location = session.get(Location, location_slug)
    if location is None:
        location = next((loc for loc in session.scalars(select(Location).where(Location.slug.is_(None)).limit(1000))
                         if slugify(loc.name) == location_slug), None)
    cal = None if location is None else session.scalar(select(Calendar).where(Calendar.location_id == location.id,
                                                             Calendar.slug == calendar_slug))
    if location is None or cal is None:
        raise NotFound("no such booking page")
    return location, cal


def location_slug(location: Location) -> str:
    return location.slug or slugify(location.name)
