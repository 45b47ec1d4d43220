"""Staff accounts: create a user who can sign in, set a password, check a sign-in; and what the settings
pages change about a location (name, time zone, sender defaults, API keys).

Passwords are hashed with werkzeug.security (scrypt, salted): a well-kept implementation we already
depend on through Flask. Roles: ``admin`` (location admin) and ``user``.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from automations.errors import Conflict, ValidationError
from automations.store.db import get_in_location
from automations.store.models import ApiKey, Location, User

ROLES = ("admin", "user")
MIN_PASSWORD = 8
MAX_PASSWORD = 200  # scrypt of a megabyte is a denial of service, not a password
#: Checked against when the email is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def normalize_email(value: str | None, path: str = "email") -> str:
    text = (value or "").strip().lower()
    if not text or "@" not in text or len(text) > 320 or any(c.isspace() for c in text):
        raise ValidationError.single(path, "enter an email address like name@example.com")
    return text


def check_password(password: str | None, path: str = "password") -> str:
    if not password or len(password) < MIN_PASSWORD:
        raise ValidationError.single(path, f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError.single(path, f"must be at most {MAX_PASSWORD} characters")
    return password


def set_password(user: User, password: str) -> None:
    user.password_hash = generate_password_hash(check_password(password))


def verify_password(user: User, password: str | None) -> bool:
    if not user.password_hash or not password or len(password) > MAX_PASSWORD:
        return False
    return check_password_hash(user.password_hash, password)


def create_user(session: Session, location: Location, *, email: str, first_name: str = "", last_name: str = "",
                role: str = "user", password: str | None = None, timezone: str | None = None,
                now: datetime) -> User:
    """A staff member of ``location``; with a password they can sign in. Emails are unique per location."""
    email = normalize_email(email)
    if role not in ROLES:
        raise ValidationError.single("role", f"must be one of: {', '.join(ROLES)}")
    if len(first_name) > 100 or len(last_name) > 100:
        raise ValidationError.single("first_name" if len(first_name) > 100 else "last_name", "must be at most 100 characters")
    taken = session.scalar(select(User.id).where(User.location_id == location.id, func.lower(User.email) == email))
    if taken:
        raise Conflict("a user with this email already exists", fields={"email": ["already a user here"]})
    user = User(location_id=location.id, email=email, first_name=first_name.strip(), last_name=last_name.strip(),
                role=role, timezone=timezone, created_at=now)
    if password is not None:
        set_password(user, password)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, email: str | None, password: str | None) -> User | None:
    """The user with this email and password, or None. Same cost whether or not the email exists."""
    text = (email or "").strip().lower()
    if not text or not password or len(password) > MAX_PASSWORD or len(text) > 320:
        return None
    candidates = list(session.scalars(
        select(User).where(func.lower(User.email) == text, User.password_hash.is_not(None)).order_by(User.created_at)))
    if not candidates:
        check_password_hash(_DUMMY_HASH, password)
        return None
    for user in candidates:
        if check_password_hash(user.password_hash, password):
            return user
    return None


# -- location settings and API keys (what the settings pages change) ---------------------------------

def set_role(user: User, role: str) -> None:
    if role not in ROLES:
        raise ValidationError.single("role", f"must be one of: {', '.join(ROLES)}")
    user.role = role


def update_location(location: Location, *, name: str, timezone: str, email: str | None, phone: str | None) -> None:
    """Name, time zone and the sender defaults (email, SMS number) every workflow falls back to."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name or len(name) > 200:
        errors["name"] = ["enter a name of 1 to 200 characters"]
    try:
        if not timezone or len(timezone) > 64:
            raise ZoneInfoNotFoundError(timezone)
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        errors["timezone"] = ["choose a time zone such as America/New_York"]
    email = (email or "").strip() or None
    if email is not None:
        try:
            email = normalize_email(email)
        except ValidationError:
            errors["email"] = ["enter an email address like hello@example.com"]
    phone = (phone or "").strip() or None
    if phone is not None and (len(phone) > 32 or not phone.lstrip("+").replace(" ", "").isdigit()):
        errors["phone"] = ["enter a phone number with its country code, e.g. +12125550100"]
    if errors:
        raise ValidationError("invalid location settings", fields=errors)
    location.name, location.timezone, location.email, location.phone = name, timezone, email, phone


def api_keys(session: Session, location_id: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.location_id == location_id).order_by(ApiKey.created_at)))


def revoke_api_key(session: Session, location_id: str, key_id: str) -> None:
    """Delete a key: requests with it are refused from now on. Another location's key is not found."""
    session.delete(get_in_location(session, ApiKey, location_id, key_id, "API key"))
