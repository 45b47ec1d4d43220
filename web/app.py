"""The Flask app factory.

``create_app`` wires the database session factory, the clock, the (optional) runtime and the
settings into ``app.extensions["punctual"]`` and registers the JSON API and error handlers. It
never starts a scheduler: ``automations serve`` does that, and tests drive ``runtime.tick()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from automations.clock import Clock, SystemClock
from automations.settings import Settings
from automations.store.db import make_engine, make_session_factory
from web import errors

MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: far above any workflow document, far below a memory problem


@dataclass
class PunctualState:
    """What request handlers need, found at ``app.extensions["punctual"]``."""

    factory: sessionmaker[Session]
    clock: Clock
    runtime: Any | None
    settings: Settings


def state() -> PunctualState:
    return current_app.extensions["punctual"]


def create_app(*, factory: sessionmaker[Session] | None = None, clock: Clock | None = None,
               runtime: Any | None = None, settings: Settings | None = None) -> Flask:
    # Imported here so ``import web.app`` stays cheap and the registries complete before routes load.
    import actions  # noqa: F401
    import triggers  # noqa: F401
    from web import unsubscribe
    from web.api import api_blueprint
    from web.hooks import twilio as twilio_hooks
    from web.hooks import zoom as zoom_hooks
    from web.integrations import zoom as zoom_integration
    from web.pages import init_app as init_pages

    settings = settings or Settings.from_env()
    if factory is None:
        factory = make_session_factory(make_engine(settings.database_url))
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
    )
    app.json.sort_keys = False  # keep serializers' field order: it reads better
    app.extensions["punctual"] = PunctualState(factory=factory, clock=clock or SystemClock(), runtime=runtime,
                                               settings=settings)
    errors.register(app)
    app.register_blueprint(api_blueprint())
    app.register_blueprint(zoom_hooks.bp)  # /hooks/zoom
    app.register_blueprint(zoom_integration.bp)  # /integrations/zoom/callback
    app.register_blueprint(twilio_hooks.bp)  # /hooks/twilio/status, /inbound, /voicemail
    app.register_blueprint(unsubscribe.bp)  # /unsubscribe/<token> (List-Unsubscribe, one-click)
    init_pages(app)  # the web app: sign-in, dashboard, builder, history, settings (web/pages)

    @app.get("/healthz")
    def healthz():
        try:
            with factory() as session:
                session.execute(text("select 1"))
        except SQLAlchemyError:
            current_app.logger.exception("health check: database unreachable")
            return jsonify({"ok": False, "error": "database unreachable"}), 503
        return jsonify({"ok": True})

    return app
