"""``/integrations/zoom/callback``: where Zoom sends the user's browser after they approve (or decline)
Punctual. The answer is a short HTML page saying what happened and, when it did not work, what to do.

:func:`zoom_service` is the app's one :class:`~automations.zoom.connections.ZoomConnections` (also used by
the users API to start and end connections).
"""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, current_app, request

from automations.zoom.connections import (
    ZoomAccountInUse,
    ZoomAuthorizationFailed,
    ZoomConnections,
    ZoomNotConfigured,
)
from automations.zoom.provider import make_box
from providers.zoom_meetings import CALLBACK_PATH, make_client, zoom_configured

bp = Blueprint("zoom_integration", __name__)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Punctual</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 3rem auto; line-height: 1.5">
<h1>{title}</h1><p>{text}</p><p>You can close this window.</p></body></html>
"""


def page(title: str, text: str, status: int) -> Response:
    body = _PAGE.format(title=escape(title), text=escape(text))
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the URL carried a code and a state
    return response


def zoom_service() -> ZoomConnections:
    """The app's Zoom connection service; :class:`ZoomNotConfigured` when no Zoom app is set up."""
    app = current_app
    service = app.extensions.get("punctual.zoom")
    if service is None:
        state = app.extensions["punctual"]
        if not zoom_configured(state.settings):
            raise ZoomNotConfigured(
                "Zoom is not configured on this Punctual: set ZOOM_CLIENT_ID and ZOOM_CLIENT_SECRET "
                "(meetings use the offline sandbox until then)")
        service = ZoomConnections(state.factory, make_client(state.settings, clock=state.clock),
                                  make_box(state.settings))
        app.extensions["punctual.zoom"] = service
    return service


@bp.get(CALLBACK_PATH)
def callback() -> Response:
    clock = current_app.extensions["punctual"].clock
    try:
        service = zoom_service()
    except ZoomNotConfigured as exc:
        return page("Zoom is not set up", exc.message, 404)
    state, code = request.args.get("state"), request.args.get("code")
    if request.args.get("error"):
        service.fail(state, now=clock.now())
        return page("Zoom was not connected",
                    "Zoom did not grant access (the request was declined or cancelled). "
                    "To use Zoom links, start again from your profile and choose Allow.", 400)
    try:
        connected = service.complete(state, code, now=clock.now())
    except ZoomAccountInUse as exc:
        return page("This Zoom account is already in use", exc.message, 409)
    except ZoomAuthorizationFailed as exc:
        return page("Zoom was not connected", exc.message, 400)
    who = connected.user_name or "your profile"
    verb = "reconnected" if connected.reconnected else "connected"
    return page("Zoom connected",
                f"The Zoom account {connected.zoom_email} is now {verb} to {who}. Each booking on a calendar "
                "where you meet on Zoom gets its own Zoom meeting link.", 200)
