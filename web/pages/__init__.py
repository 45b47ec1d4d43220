"""The web app marketers use: server-rendered pages under ``/`` (sign-in, dashboard, the workflow
builder, history, contacts, outbox, settings, recipes).

Every page works without JavaScript (forms post); ``web/static/*.js`` only improves them. Pages call
the same domain functions as the JSON API and reuse its request helpers (``web.api.common``); the
signed-in user and their location are loaded once per request in :mod:`web.pages.base`.
"""

from __future__ import annotations

from flask import Flask

from web.pages import (  # noqa: F401  (routes)
    auth,
    calendars,
    dashboard,
    history,
    recipes,
    settings,
    workflow_tools,
    workflows,
)
from web.pages.base import bp, csrf


def init_app(app: Flask) -> None:
    """Register the pages and CSRF protection (checked by the pages' own ``before_request``, so the
    bearer-key API and provider webhooks are unaffected)."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    csrf.init_app(app)
    app.register_blueprint(bp)
