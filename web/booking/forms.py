"""The public booking form: the visitor's fields validated with a message beside each, and the signed
form token that stands in for a CSRF token (no account, so no session: the token is signed with the
app secret, bound to what the form acts on, and expires)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from automations.booking.booking_links import signing_keys
from automations.booking.contacts import normalize_phone
from automations.errors import ValidationError

SALT = "punctual-booking-form"
TOKEN_MAX_AGE = 2 * 3600
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]{1,63}(\.[^@\s.]{1,63})+")
MAX_NAME, MAX_NOTES = 200, 2000


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_keys(secret_key), salt=SALT)


def form_token(secret_key: str, scope: str | None) -> str:
    """A token for a form acting on ``scope`` (a calendar or an appointment id; None matches no scope)."""
    return _serializer(secret_key).dumps(scope)


def check_token(secret_key: str, value: str | None, scope: str) -> bool:
    try:
        return _serializer(secret_key).loads(value or "", max_age=TOKEN_MAX_AGE) == scope
    except (SignatureExpired, BadSignature):
        return False


@dataclass
class BookingForm:
    """What the visitor typed, and what is wrong with it (field → message)."""

    name: str = ""
    email: str = ""
    phone: str = ""
    notes: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    phone_e164: str | None = None

    @classmethod
    def read(cls, values, region: str = "US") -> BookingForm:
        form = cls(name=(values.get("name") or "").strip(), email=(values.get("email") or "").strip(),
                   phone=(values.get("phone") or "").strip(), notes=(values.get("notes") or "").strip())
        if not form.name:
            form.errors["name"] = "Enter your name"
        elif len(form.name) > MAX_NAME:
            form.errors["name"] = f"Your name must be {MAX_NAME} characters or fewer"
        if not form.email:
            form.errors["email"] = "Enter your email address"
        elif len(form.email) > 254 or not _EMAIL.fullmatch(form.email):
            form.errors["email"] = "Enter an email address like name@example.com"
        if form.phone:
            try:
                form.phone_e164 = normalize_phone(form.phone, region)
            except ValidationError:
                form.errors["phone"] = "Enter a phone number with its country code, like +1 212 555 0100"
        if len(form.notes) > MAX_NOTES:
            form.errors["notes"] = f"Notes must be {MAX_NOTES} characters or fewer"
        return form

    @property
    def first_last(self) -> tuple[str, str]:
        first, _, last = self.name.partition(" ")
        return first[:100], last.strip()[:100]


def parse_start(value: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
