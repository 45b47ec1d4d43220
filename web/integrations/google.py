"""``/integrations/google/callback``: where Google sends the user's browser after they approve (or decline)
Punctual's access to their calendar; a short page says what happened.

:func:`google_service` is the app's one :class:`~automations.google.connections.GoogleConnections` (the API
uses it to start and end connections and to list a user's calendars); tests may put their own in
``app.extensions["punctual.google"]``.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from automations.google.connections import (
    CALLBACK_PATH,
    GoogleAuthorizationFailed,
    GoogleConnections,
    GoogleNotConfigured,
    GoogleSettings,
)
from automations.store.secrets_box import SecretsBox
from web.integrations.zoom import page

bp = Blueprint("google_integration", __name__)


def google_service() -> GoogleConnections:
    app = current_app
    service = app.extensions.get("punctual.google")
    if service is None:
        state = app.extensions["punctual"]
        settings = GoogleSettings.from_env(state.settings.public_url)
        service = GoogleConnections(state.factory, settings.client(clock=state.clock),
                                    SecretsBox(state.settings.secret_key))
        app.extensions["punctual.google"] = service
    return service


@bp.get(CALLBACK_PATH)
def callback() -> Response:
    clock = current_app.extensions["punctual"].clock
    try:
        service = google_service()
    except GoogleNotConfigured as exc:
        return page("Google is not set up", exc.message, 404)
    if request.args.get("error"):
        return page("Google Calendar was not connected",
                    "Google did not grant access (the request was declined or cancelled). Start again from your "
                    "profile and choose Allow.", 400)
    try:
        who = service.complete(request.args.get("state"), request.args.get("code"), now=clock.now())
    except GoogleAuthorizationFailed as exc:
        return page("Google Calendar was not connected", exc.message, 400)
    return page("Google Calendar connected",
                f"Google Calendar is now connected to {who or 'your profile'}. Pick which of your calendars each "
                "Punctual calendar writes to; your Google busy times will block those times for bookings.", 200)
