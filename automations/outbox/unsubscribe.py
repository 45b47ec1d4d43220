"""Unsubscribe links for contact emails (``List-Unsubscribe``, RFC 2369, with RFC 8058 one-click).

The token names the contact and is signed with the deployment's secret key, so it can be neither guessed
nor altered; following it (or the one-click POST a mail client makes) turns on the contact's email
do-not-disturb (``web/unsubscribe.py``).
"""

from __future__ import annotations

from automations.store.signed_ids import sign_id, unsign_id

SALT = "punctual-unsubscribe"
PATH = "/unsubscribe"


def token(secret_key: str, contact_id: str) -> str:
    return sign_id(secret_key, SALT, "c", contact_id)


def url(public_url: str, secret_key: str, contact_id: str) -> str:
    return f"{public_url.rstrip('/')}{PATH}/{token(secret_key, contact_id)}"


def contact_id(secret_key: str, value: str) -> str | None:
    """The contact a token names, or None when it is not one of ours."""
    return unsign_id(secret_key, SALT, "c", value)
