"""Unsubscribe links for contact emails (``List-Unsubscribe``, RFC 2369, with RFC 8058 one-click).

The token names the contact and is signed with the deployment's secret key, so it can be neither guessed
nor altered; following it (or the one-click POST a mail client makes) turns on the contact's email
do-not-disturb (``web/unsubscribe.py``).
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

SALT = "punctual-unsubscribe"
PATH = "/unsubscribe"


def _serializer(secret_key: str) -> URLSafeSerializer:
    # The first key signs; with a rotated list (comma-separated) older tokens still verify.
    keys = [k for k in (s.strip() for s in secret_key.split(",")) if k] or [secret_key]
    return URLSafeSerializer(list(reversed(keys)), salt=SALT)


def token(secret_key: str, contact_id: str) -> str:
    return _serializer(secret_key).dumps({"c": contact_id})


def url(public_url: str, secret_key: str, contact_id: str) -> str:
    return f"{public_url.rstrip('/')}{PATH}/{token(secret_key, contact_id)}"


def contact_id(secret_key: str, value: str) -> str | None:
    """The contact a token names, or None when it is not one of ours."""
    try:
        data = _serializer(secret_key).loads(value)
    except (BadSignature, ValueError, TypeError):
        return None
    return data.get("c") if isinstance(data, dict) and isinstance(data.get("c"), str) else None
