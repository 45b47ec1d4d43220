"""Ids signed with the deployment's secret key (itsdangerous), for links that act without an account: a
contact's unsubscribe link, an appointment's cancel/reschedule link. Each use has its own salt, so a token
made for one purpose is refused by every other.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer


def signing_keys(secret_key: str) -> list[str]:
    """The setting's keys as itsdangerous wants them: the first listed key signs (it goes last), and
    with a rotated, comma-separated list older signatures still verify."""
    keys = [k for k in (s.strip() for s in secret_key.split(",")) if k] or [secret_key]
    return list(reversed(keys))


def sign_id(secret_key: str, salt: str, field: str, value: str) -> str:
    """A URL-safe token holding ``{field: value}``."""
    return URLSafeSerializer(signing_keys(secret_key), salt=salt).dumps({field: value})


def unsign_id(secret_key: str, salt: str, field: str, token: str) -> str | None:
    """The id a token made by :func:`sign_id` (same salt and field) holds, or None when it is not one of ours."""
    try:
        data = URLSafeSerializer(signing_keys(secret_key), salt=salt).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    return data.get(field) if isinstance(data, dict) and isinstance(data.get(field), str) else None
