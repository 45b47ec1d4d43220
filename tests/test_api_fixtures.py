"""Fixtures and helpers for the API tests (imported by ``tests/test_api_*.py``; no tests here).

Fixtures are defined under ``*_fixture`` names and registered under short ones (``api``, ``app``), so
a test module imports them as ``from tests.test_api_fixtures import api_fixture  # noqa: F401`` and its
tests take ``api``. Importing ``sqlite_only`` (registered as ``db_url``) pins a module to SQLite: the
API layer does not depend on the backend, and one booking test (``test_api_postgres.py``) runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.factories import World, make_world
from web.api import responses
from web.app import create_app

OTHER_KEY = "pk_test_location_two"


@pytest.fixture(name="db_url")
def sqlite_only(sqlite_url: str) -> str:
    """API tests run on SQLite (overrides conftest's both-backends ``db_url``)."""
    return sqlite_url


class SpyRuntime:
    """The conftest runtime plus ``wake()``, recording how often the API woke the worker."""

    def __init__(self, runtime) -> None:
        self._runtime = runtime
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1

    def tick(self, *args, **kwargs):
        return self._runtime.tick(*args, **kwargs)

    def __getattr__(self, name: str):
        # settings, providers, ...: the app shares the runtime's (one deployment, one secret key).
        return getattr(self._runtime, name)


@pytest.fixture(name="spy_runtime")
def spy_runtime_fixture(runtime) -> SpyRuntime:
    return SpyRuntime(runtime)


@pytest.fixture(name="app")
def app_fixture(factory, clock, spy_runtime) -> Flask:
    app = create_app(factory=factory, clock=clock, runtime=spy_runtime)
    app.testing = True
    return app


@dataclass
class Api:
    """A test client that sends the API key and JSON bodies."""

    client: FlaskClient
    key: str | None

    def call(self, method: str, path: str, json: Any = None, *, headers: dict | None = None, **kw):
        hdrs = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        hdrs.update(headers or {})
        if json is not None:
            kw["json"] = json
        return self.client.open(f"/api/v1{path}", method=method, headers=hdrs, **kw)

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw):
        return self.call("POST", path, json, **kw)

    def put(self, path: str, json: Any = None, **kw):
        return self.call("PUT", path, json, **kw)

    def patch(self, path: str, json: Any = None, **kw):
        return self.call("PATCH", path, json, **kw)

    def delete(self, path: str, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture(name="api")
def api_fixture(app: Flask, world: World) -> Api:
    return Api(app.test_client(), world.api_key)


@pytest.fixture(name="other_world")
def other_world_fixture(factory, clock, world) -> World:
    """A second location with its own users, calendars, contacts and key."""
    with factory() as session, session.begin():
        return make_world(session, clock.now(), key=OTHER_KEY, name="Other Clinic")


@pytest.fixture(name="other_api")
def other_api_fixture(app: Flask, other_world: World) -> Api:
    return Api(app.test_client(), other_world.api_key)


def count(factory, model) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(model))


def counts(factory, *models) -> dict[str, int]:
    return {m.__name__: count(factory, m) for m in models}


def error_fields(response) -> dict[str, list[str]]:
    body = response.get_json()
    assert "error" in body, body
    return body["error"].get("fields", {})


def shape_fields(name: str) -> set[str]:
    """The fields a response schema declares (the document requires every one)."""
    schema = next(s for s in responses.RESPONSE_SCHEMAS if s.__name__ == f"{name}Out")
    return set(schema().fields)


def confirmation_doc(name: str = "Confirmations") -> dict:
    """A published-ready document: on confirmed, email the contact their name and meeting link, tell
    the host in-app, then text a reminder a day before."""
    return {
        "version": 1,
        "name": name,
        "triggers": [{"type": "appointment_status", "filters": {"statuses": ["confirmed"]}}],
        "steps": [
            {"id": "confirm", "type": "send_email", "subject": "See you soon, {{contact.first_name}}",
             "body": "Hi {{contact.first_name}}, join here: {{appointment.meeting_location}}"},
            {"id": "tell-host", "type": "internal_notification", "channel": "in_app",
             "recipients": "assigned_user", "subject": "New booking", "body": "{{contact.name}} booked"},
            {"id": "wait", "type": "wait_appointment_time", "direction": "before", "days": 1},
            {"id": "remind", "type": "send_sms", "body": "Tomorrow: {{appointment.meeting_location}}"},
        ],
    }
