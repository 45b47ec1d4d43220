"""The JSON API under ``/api/v1``: one blueprint per resource, nested in one parent blueprint that
authenticates every request (bearer API key → location) before any view runs.

Only views marked ``public`` in their ``@doc`` (the OpenAPI document) skip authentication.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from automations.errors import NotFound
from web.api import (
    appointments,
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
from web.api.common import doc
from web.auth import authenticate

PREFIX = "/api/v1"
RESOURCES = (contacts, calendars, appointments, workflows, recipes, enrollments, messages, notifications, users,
             google)

api = Blueprint("api", __name__, url_prefix=PREFIX)
for _module in RESOURCES:
    api.register_blueprint(_module.bp)


@api.url_value_preprocessor
def _reject_nul(_endpoint: str | None, values: dict | None) -> None:
    # A NUL in an id can never match, and PostgreSQL would refuse the query outright.
    if values and any("\x00" in v for v in values.values() if isinstance(v, str)):
        raise NotFound("not found")


@api.before_request
def _authenticate() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "__openapi__", {}).get("public"):
        return
    authenticate(current_app.extensions["punctual"].factory)


@api.get("/openapi.json")
@doc("This document: the OpenAPI 3.1 description of the API", public=True)
def openapi_json() -> ResponseReturnValue:
    from web.openapi import build_document

    return jsonify(build_document(current_app))


def api_blueprint() -> Blueprint:
    return api
