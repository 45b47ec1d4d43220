"""``/hooks/zoom``: Zoom's signed webhooks (contract ``EXTERNAL_APIS.md`` §1.8).

Every request is verified first (``x-zm-signature`` over the raw body with ``ZOOM_WEBHOOK_SECRET_TOKEN``,
timestamp within 5 minutes): a bad or missing signature is a 401, and nothing in an unsigned body is read.
``endpoint.url_validation`` is answered with its ``encryptedToken``; ``app_deauthorized`` removes that Zoom
user's stored tokens. Zoom retries deliveries, so handling is idempotent; other events are acknowledged
and ignored (Punctual never imports meetings made in Zoom).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from automations.zoom.connections import ZoomConnections
from automations.zoom.provider import make_box
from providers.zoom_meetings import make_client
from providers.zoom_webhooks import (
    APP_DEAUTHORIZED,
    parse_app_deauthorized,
    url_validation_response,
    verify_and_parse,
)

log = logging.getLogger(__name__)
bp = Blueprint("zoom_hooks", __name__)


def _connections() -> ZoomConnections:
    # Deauthorization only deletes rows, but the service wants a client: build one without requiring the
    # OAuth app settings (a webhook may arrive after they were removed).
    state = current_app.extensions["punctual"]
    service = current_app.extensions.get("punctual.zoom") or current_app.extensions.get("punctual.zoom_hooks")
    if service is None:
        service = ZoomConnections(state.factory, make_client(state.settings, clock=state.clock),
                                  make_box(state.settings))
        current_app.extensions["punctual.zoom_hooks"] = service
    return service


@bp.post("/hooks/zoom")
def zoom_webhook() -> Response | tuple[Response, int]:
    state = current_app.extensions["punctual"]
    secret = state.settings.zoom_webhook_secret or ""
    event = verify_and_parse(secret, request.headers, request.get_data(cache=False), now=state.clock.now())
    if event.is_url_validation:
        return jsonify(url_validation_response(secret, event))
    if event.event == APP_DEAUTHORIZED:
        deauth = parse_app_deauthorized(event)
        removed = _connections().deauthorize(deauth.user_id, deauth.account_id, now=state.clock.now())
        log.info("Zoom app_deauthorized for Zoom user %s: %s", deauth.user_id,
                 "tokens removed" if removed else "no connection (already removed)")
        return jsonify({"ok": True, "removed": removed})
    return Response(status=204)
