"""Fixtures for the page tests (``tests/test_pages_*.py``; no tests here): an app on SQLite with two
locations, each with a signed-in-able admin, and a client that signs in and posts forms with the CSRF
token the page gave it."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from automations.booking import accounts
from automations.store.models import Location, User
from tests.factories import World, make_world
from web.app import create_app

PASSWORD = "correct horse battery"
OTHER_EMAIL = "olivia@other.example"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


@pytest.fixture(name="db_url")
def sqlite_only(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture(name="two_worlds")
def two_worlds_fixture(factory, clock) -> tuple[World, World]:
    with factory() as s, s.begin():
        one = make_world(s, clock.now())
        two = make_world(s, clock.now(), key="pk_test_location_two", name="Other Clinic")
        accounts.set_password(s.get(User, one.alice_id), PASSWORD)
        accounts.create_user(s, s.get(Location, two.location_id), email=OTHER_EMAIL, first_name="Olivia",
                             role="admin", password=PASSWORD, now=clock.now())
    return one, two


@pytest.fixture(name="app")
def app_fixture(factory, clock, runtime, two_worlds) -> Flask:
    app = create_app(factory=factory, clock=clock, runtime=runtime)
    app.testing = True
    return app


@dataclass
class Browser:
    """A Flask test client that keeps the CSRF token from the last page it loaded."""

    client: FlaskClient
    token: str = ""

    def get(self, url: str, **kw):
        response = self.client.get(url, **kw)
        m = _TOKEN.search(response.get_data(as_text=True))
        if m:
            self.token = m.group(1)
        return response

    def post(self, url: str, data: dict | None = None, **kw):
        if not self.token:
            self.get("/login")
        body = {"csrf_token": self.token, **(data or {})}
        return self.client.post(url, data=body, **kw)

    def sign_in(self, email: str = "alice@example.com", password: str = PASSWORD):
        self.get("/login")
        response = self.post("/login", {"email": email, "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self.get("/")
        return response


@pytest.fixture(name="browser")
def browser_fixture(app) -> Browser:
    return Browser(app.test_client())


@pytest.fixture(name="signed_in")
def signed_in_fixture(browser) -> Browser:
    browser.sign_in()
    return browser
