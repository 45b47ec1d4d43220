"""The parent blueprint of ``/api/v1``: nests every resource's blueprint and authenticates every
request (bearer API key → location) before any view runs; serves the OpenAPI document.

Only views marked ``public`` in their ``@doc`` skip authentication.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from automations.errors import NotFound
from web import openapi
from web.api import (
    api_keys,
    appointments,
    audit,
    calendars,
    contacts,
    enrollments,
    google,
    messages,
    notifications,
    recipes,
    users,
    workflows,
)
from web.api.common import PREFIX, doc
from web.auth import authenticate

RESOURCES = (contacts, calendars, appointments, workflows, recipes, enrollments, messages, notifications, users,
             api_keys, audit, google)


def _reject_nul(_endpoint: str | None, values: dict | None) -> None:
    # A NUL in an id can never match, and PostgreSQL would refuse the query outright.
    if values and any("\x00" in v for v in values.values() if isinstance(v, str)):
        raise NotFound("not found")


def _authenticate() -> None:
    if request.method == "OPTIONS":  # Flask's automatic answer: the Allow header, no data
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "__openapi__", {}).get("public"):
        return
    state = current_app.extensions["punctual"]
    authenticate(state.factory, now=state.clock.now(), limits=state.limits, counts=state.counts)


@doc("This document: the OpenAPI 3.1 description of the API", public=True)
def openapi_json() -> ResponseReturnValue:
    return jsonify(openapi.build_document(current_app))


def api_blueprint() -> Blueprint:
    """A fresh parent blueprint (one per app: blueprints remember the apps they were registered on)."""
    api = Blueprint("api", __name__, url_prefix=PREFIX)
    for module in RESOURCES:
        api.register_blueprint(module.bp)
    api.url_value_preprocessor(_reject_nul)
    api.before_request(_authenticate)
    api.add_url_rule("/openapi.json", view_func=openapi_json, methods=["GET"])
    return api
