"""What Zoom and Google connections share in the database: the single-use OAuth state with its encrypted PKCE
verifier, stored tokens read back, revoking on the way out, and a connection marked broken with one alert.

Each provider package (``automations.zoom``, ``automations.google``) keeps its own rules and messages; this
module holds only the steps that are the same for both.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy.orm import Session, sessionmaker

from automations.store.db import table_of
from automations.store.models import GoogleConnection, Notification, OAuthState, ZoomConnection
from automations.store.secrets_box import SecretDecryptionError, SecretsBox
from providers.oauth_http import code_challenge_s256, make_code_verifier

log = logging.getLogger(__name__)

ACTIVE, BROKEN = "active", "broken"


def issue_state(session: Session, box: SecretsBox, *, provider: str, user_id: str, now: datetime,
                ttl: timedelta) -> tuple[str, str, datetime]:
    """A fresh random single-use state for ``provider`` with its PKCE verifier stored encrypted (abandoned
    attempts are tidied away). Returns the state, the S256 code challenge and when the state expires."""
    verifier = make_code_verifier()
    state = secrets.token_urlsafe(32)  # 43 characters
    expires_at = now + ttl
    session.execute(table_of(OAuthState).delete().where(OAuthState.expires_at < now))
    session.add(OAuthState(state=state, provider=provider, user_id=user_id,
                           code_verifier_enc=box.encrypt(verifier), created_at=now, expires_at=expires_at))
    return state, code_challenge_s256(verifier), expires_at


@dataclass(frozen=True)
class ClaimedState:
    """The outcome of :func:`claim_state`: ``problem`` is ``""`` (usable), ``"unknown"`` (never issued for
    this provider, or already used), ``"expired"`` or ``"unreadable"`` (the verifier cannot be decrypted)."""

    problem: str
    user_id: str | None = None
    verifier: str | None = None


def claim_state(session: Session, box: SecretsBox, *, provider: str, state: str, now: datetime) -> ClaimedState:
    """Spend ``state`` (single use, whatever happens next) and return who it was for and its PKCE verifier."""
    row = session.get(OAuthState, state)
    if row is None or row.provider != provider:
        return ClaimedState("unknown")
    session.delete(row)
    if row.expires_at <= now:
        return ClaimedState("expired")
    try:
        verifier = box.decrypt(row.code_verifier_enc) if row.code_verifier_enc else None
    except SecretDecryptionError:
        return ClaimedState("unreadable")
    return ClaimedState("", row.user_id, verifier)


def mark_connection_broken(session: Session, conn: ZoomConnection | GoogleConnection | None, reason: str,
                           now: datetime, *, title: str, body: str) -> bool:
    """The provider refused the credential for good: the connection is broken, its dead tokens dropped and
    its user alerted (once: only when it was active). Returns whether it changed."""
    if conn is None or conn.status != ACTIVE:
        return False
    conn.status, conn.status_reason = BROKEN, reason[:1000]
    conn.access_token_enc = conn.refresh_token_enc = None
    conn.updated_at = now
    session.add(Notification(location_id=conn.location_id, user_id=conn.user_id, created_at=now, title=title,
                             body=body))
    return True


class OAuthConnections:
    """Base of a provider's connection service: one session factory, one client, one secrets box."""

    #: The provider's name in log lines, and the base of its client's errors (a failed revoke is logged).
    provider_name: ClassVar[str]
    provider_error: ClassVar[type[Exception]]

    def __init__(self, factory: sessionmaker[Session], client: Any, box: SecretsBox) -> None:
        self.factory = factory
        self.client = client
        self.box = box

    def _plain(self, encrypted: str | None) -> str | None:
        """A stored token in clear, or None when there is none or it can no longer be decrypted."""
        if not encrypted:
            return None
        try:
            return self.box.decrypt(encrypted)
        except SecretDecryptionError:
            return None

    def _revoke(self, token: str) -> None:
        try:
            self.client.revoke(token)
        except self.provider_error as exc:  # our copy is gone already; the provider expires unused grants
            log.warning("%s token revoke failed (tokens already removed locally): %s", self.provider_name, exc)
