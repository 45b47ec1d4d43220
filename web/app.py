"""The Flask app factory.

``create_app`` wires the database session factory, the clock, the (optional) runtime, the settings and
the provider bag (``automations.wiring``) into ``app.extensions["punctual"]`` and registers the JSON API and error handlers. It
never starts a scheduler: ``automations serve`` does that, and tests drive ``runtime.tick()``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, jsonify
from flask.json.provider import DefaultJSONProvider
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix

import actions  # noqa: F401  (the step registry is complete before the document is built)
import triggers  # noqa: F401
from automations.clock import Clock, SystemClock
from automations.settings import Settings
from automations.store.db import make_engine, make_session_factory, transaction
from automations.store.ratelimit import BatchedCounts
from automations.wiring import build_providers
from providers.bag import Providers
from web import booking as booking_pages
from web import errors, headers, request_guard, unsubscribe
from web.api.blueprint import api_blueprint
from web.api.common import IdConverter
from web.hooks import google as google_hooks
from web.hooks import twilio as twilio_hooks
from web.hooks import zoom as zoom_hooks
from web.integrations import google as google_integration
from web.integrations import zoom as zoom_integration
from web.pages import init_app as init_pages
from web.ratelimit import WINDOW_SECONDS, RateLimits

MAX_CONTENT_LENGTH = 1024 * 1024  # 1 MiB: far above any workflow document, far below a memory problem


@dataclass
class PunctualState:
    """What request handlers need, found at ``app.extensions["punctual"]``."""

    factory: sessionmaker[Session]
    clock: Clock
    runtime: Any | None
    settings: Settings
    #: The deployment's provider bag (the runtime's when one is given).
    providers: Providers
    limits: RateLimits = field(default_factory=RateLimits)
    #: This process's share of the API call counters (synced to the database now and then).
    counts: BatchedCounts = field(init=False)

    def __post_init__(self) -> None:
        self.counts = BatchedCounts(self._write, window_seconds=WINDOW_SECONDS)

    def _write(self, work: Callable[[Session], int]) -> int:
        with transaction(self.factory) as session:
            return work(session)


class _OrderedJSON(DefaultJSONProvider):
    sort_keys = False  # keep serializers' field order: it reads better


def state() -> PunctualState:
    return current_app.extensions["punctual"]


def create_app(*, factory: sessionmaker[Session] | None = None, clock: Clock | None = None,
               runtime: Any | None = None, settings: Settings | None = None,
               limits: RateLimits | None = None) -> Flask:
    settings = settings or getattr(runtime, "settings", None) or Settings.from_env()
    if factory is None:
        factory = make_session_factory(make_engine(settings.database_url))
    clock = clock or SystemClock()
    providers = getattr(runtime, "providers", None) or build_providers(settings, factory, clock)
    app = Flask(__name__)
    if settings.trusted_proxies:
        # Scheme, host, port and prefix as the outermost trusted proxy saw them (Twilio signs that URL).
        n = settings.trusted_proxies
        # Wrapping wsgi_app is Flask's documented way to add middleware; typeshed sees a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH,
    )
    app.json = _OrderedJSON(app)
    app.extensions["punctual"] = PunctualState(factory=factory, clock=clock, runtime=runtime, settings=settings,
                                               providers=providers, limits=limits or RateLimits.from_env())
    app.url_map.converters["id"] = IdConverter
    errors.register(app)
    request_guard.init_app(app)
    headers.init_app(app)
    app.register_blueprint(api_blueprint())
    app.register_blueprint(zoom_hooks.bp)  # /hooks/zoom
    app.register_blueprint(zoom_integration.bp)  # /integrations/zoom/callback
    app.register_blueprint(twilio_hooks.bp)  # /hooks/twilio/status, /inbound, /voicemail
    app.register_blueprint(unsubscribe.bp)  # /unsubscribe/<token> (List-Unsubscribe, one-click)
    app.register_blueprint(booking_pages.bp)  # /book/<location>/<calendar>, /book/a/<signed token>
    app.register_blueprint(google_integration.bp)  # /integrations/google/callback
    app.register_blueprint(google_hooks.bp)  # /hooks/google (push notifications)
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
