"""Signed links that let a contact manage one appointment without an account:
``appointment.cancellation_link`` and ``appointment.reschedule_link``.

A token is the appointment id signed with the deployment's secret key (itsdangerous, its own salt), so
it can be neither guessed, altered, nor replayed for another appointment. It works until the appointment
ends (checked against the appointment's current end, so a reschedule moves the deadline along).
"""

from __future__ import annotations

from datetime import datetime

from itsdangerous import BadSignature, URLSafeSerializer

from automations.clock import ensure_utc

SALT = "punctual-appointment-link"
PATH = "/book/a"


def signing_keys(secret_key: str) -> list[str]:
    """The setting's keys as itsdangerous wants them: the first listed key signs (it goes last), and
    with a rotated, comma-separated list older signatures still verify."""
    keys = [k for k in (s.strip() for s in secret_key.split(",")) if k] or [secret_key]
    return list(reversed(keys))


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(signing_keys(secret_key), salt=SALT)


def token(secret_key: str, appointment_id: str) -> str:
    return _serializer(secret_key).dumps({"a": appointment_id})


def appointment_id(secret_key: str, value: str) -> str | None:
    """The appointment a token names, or None when it is not one of ours."""
    try:
        data = _serializer(secret_key).loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    return data.get("a") if isinstance(data, dict) and isinstance(data.get("a"), str) else None


def usable(appointment_end: datetime, now: datetime) -> bool:
    """Links expire once the appointment is over."""
    return ensure_utc(now) < ensure_utc(appointment_end)


def manage_url(public_url: str, secret_key: str, appointment_id_: str) -> str:
    return f"{public_url.rstrip('/')}{PATH}/{token(secret_key, appointment_id_)}"


def links(public_url: str, secret_key: str, appointment_id_: str | None) -> dict[str, str]:
    """The merge fields ``cancellation_link`` and ``reschedule_link`` for one appointment."""
    if not appointment_id_:
        return {}
    base = manage_url(public_url, secret_key, appointment_id_)
    return {"cancellation_link": f"{base}/cancel", "reschedule_link": f"{base}/reschedule"}
