"""``/hooks/google``: Google Calendar push notifications (contract ``EXTERNAL_APIS.md`` §4.8).

Google does not sign pushes: each carries the channel id and the random token we chose when we opened the
channel, compared in constant time with the stored one (a mismatch is a 401 and nothing is done). A
verified ``exists`` message makes that calendar's sync due at once and wakes the worker; the body is
empty and never read. Unknown channels get 404 (an old channel we replaced; Google stops on its own).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from sqlalchemy import select

from automations.google import sync
from automations.store.db import transaction
from automations.store.models import GoogleCalendarSync
from automations.store.secrets_box import SecretDecryptionError, SecretsBox
from providers.google_calendar import GooglePushRejected, parse_push_headers, verify_push

bp = Blueprint("google_hooks", __name__)


@bp.post("/hooks/google")
def google_push() -> Response:
    state = current_app.extensions["punctual"]
    try:
        note = parse_push_headers(request.headers)
    except GooglePushRejected:
        return Response("missing channel headers", status=400)
    with transaction(state.factory) as s:
        row = s.scalar(select(GoogleCalendarSync).where(GoogleCalendarSync.channel_id == note.channel_id))
        if row is None or not row.channel_token_enc:
            return Response(status=404)
        try:
            token = SecretsBox(state.settings.secret_key).decrypt(row.channel_token_enc)
            verify_push(request.headers, channel_id=note.channel_id, channel_token=token,
                        resource_id=row.channel_resource_id)
        except (GooglePushRejected, SecretDecryptionError):
            return Response(status=401)
        if not note.is_sync:
            sync.mark_pushed(s, note.channel_id, state.clock.now())
    wake = getattr(state.runtime, "wake", None)
    if callable(wake) and not note.is_sync:
        wake()
    return Response(status=204)
