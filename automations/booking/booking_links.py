"""Signed links that let a contact manage one appointment without an account:
``appointment.cancellation_link`` and ``appointment.reschedule_link``.

A token is the appointment id signed with the deployment's secret key (itsdangerous, its own salt), so
it can be neither guessed, altered, nor replayed for another appointment. It works until the appointment
ends (checked against the appointment's current end, so a reschedule moves the deadline along).
"""

from __future__ import annotations

from datetime import datetime

from automations.clock import ensure_utc
from automations.store.signed_ids import sign_id, unsign_id
from automations.store.signed_ids import signing_keys as signing_keys  # re-exported for web/booking

SALT = "punctual-appointment-link"
PATH = "/book/a"


def token(secret_key: str, appointment_id: str) -> str:
    return sign_id(secret_key, SALT, "a", appointment_id)


def appointment_id(secret_key: str, value: str) -> str | None:
    """The appointment a token names, or None when it is not one of ours."""
    return unsign_id(secret_key, SALT, "a", value)


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
