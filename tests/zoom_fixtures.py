"""Fixtures and helpers for the Zoom integration tests: a :class:`FakeZoom` on a real socket, settings that
point the app and the worker at it, the Zoom meeting provider (built by ``automations.wiring``), a runtime
and a Flask app wired to both, and the browser's part of the OAuth round trip.

A test module imports the fixtures it uses (``from tests.zoom_fixtures import ...  # noqa: F401``).
Everything runs through the real ``httpx`` client and the fake's HTTP server; time is the ``FrozenClock``
shared by the app, the worker and the fake.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from flask import Flask
from sqlalchemy import select

from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.store.models import Message, ZoomConnection
from automations.wiring import meeting_provider
from automations.zoom.provider import ZoomMeetings
from providers.bag import Providers
from tests.factories import World, doc, publish
from tests.fakes.zoom_server import FakeZoom, FakeZoomUser
from web.app import create_app

PUBLIC_URL = "http://punctual.test"
REDIRECT_URI = f"{PUBLIC_URL}/integrations/zoom/callback"
WEBHOOK_URL = f"{PUBLIC_URL}/hooks/zoom"
SECRET_KEY = "test-secret-key-for-zoom-tokens-at-rest"
FALLBACK = "Phone: +1 212 555 0100"  # the world calendar's static location
LINK_EMAIL = {"id": "confirm", "type": "send_email", "subject": "Your meeting",
              "body": "Join: {{appointment.meeting_location}}"}


@pytest.fixture(name="fake_zoom")
def fake_zoom_fixture(clock) -> Iterator[FakeZoom]:
    with FakeZoom(clock=clock, redirect_uris=(REDIRECT_URI,)) as fake:
        yield fake
    assert not fake.errors, fake.errors  # the fake itself never crashed


@pytest.fixture(name="zoom_settings")
def zoom_settings_fixture(fake_zoom: FakeZoom) -> Settings:
    return Settings(
        batch_size=100, public_url=PUBLIC_URL, secret_key=SECRET_KEY,
        zoom_client_id=fake_zoom.client_id, zoom_client_secret=fake_zoom.client_secret,
        zoom_webhook_secret=fake_zoom.webhook_secret, zoom_api_base=fake_zoom.api_base,
        zoom_oauth_base=fake_zoom.oauth_base,
    )


@pytest.fixture(name="zoom_provider")
def zoom_provider_fixture(factory, zoom_settings, clock) -> Iterator[ZoomMeetings]:
    provider = meeting_provider(zoom_settings, factory, clock=clock)
    assert isinstance(provider, ZoomMeetings)
    yield provider
    provider.client.close()


@pytest.fixture(name="zoom_runtime")
def zoom_runtime_fixture(factory, clock, zoom_provider, zoom_settings) -> Runtime:
    return Runtime(factory, clock=clock, providers=Providers(meetings=zoom_provider), settings=zoom_settings,
                   owner="test-worker")


@pytest.fixture(name="zoom_app")
def zoom_app_fixture(factory, clock, zoom_runtime, zoom_settings) -> Iterator[Flask]:
    app = create_app(factory=factory, clock=clock, runtime=zoom_runtime, settings=zoom_settings)
    app.testing = True
    yield app
    service = app.extensions.get("punctual.zoom")
    if service is not None:
        service.client.close()


@dataclass
class Browser:
    """The user's browser and the API caller, talking to the app (in process) and to the fake (socket)."""

    app: Flask
    fake: FakeZoom
    api_key: str

    def api(self, method: str, path: str, json=None):
        kw = {"json": json} if json is not None else {}
        return self.app.test_client().open(f"/api/v1{path}", method=method,
                                           headers={"Authorization": f"Bearer {self.api_key}"}, **kw)

    def authorize_url(self, user_id: str) -> str:
        response = self.api("POST", f"/users/{user_id}/zoom/connect")
        assert response.status_code == 200, response.get_json()
        return response.get_json()["authorize_url"]

    def approve_at_zoom(self, authorize_url: str, as_zoom_user: FakeZoomUser) -> str:
        """Sign in at (fake) Zoom and approve: returns the callback path + query Zoom redirects to."""
        self.fake.login_as(as_zoom_user.id)
        with httpx.Client(timeout=5) as http:
            response = http.get(authorize_url, follow_redirects=False)
        assert response.status_code == 302, response.text
        location = urlsplit(response.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
        return f"{location.path}?{location.query}"

    def callback(self, path_and_query: str):
        return self.app.test_client().get(path_and_query)

    def connect(self, user_id: str, zoom_user: FakeZoomUser):
        return self.callback(self.approve_at_zoom(self.authorize_url(user_id), zoom_user))


@pytest.fixture(name="browser")
def browser_fixture(zoom_app, fake_zoom, world: World) -> Browser:
    return Browser(zoom_app, fake_zoom, world.api_key)


def connect_ok(browser: Browser, user_id: str, zoom_user: FakeZoomUser) -> None:
    response = browser.connect(user_id, zoom_user)
    assert response.status_code == 200, response.get_data(as_text=True)


def connection(factory, user_id: str) -> ZoomConnection | None:
    with factory() as s:
        return s.scalar(select(ZoomConnection).where(ZoomConnection.user_id == user_id))


def publish_link_workflow(factory, world: World, clock, *steps, **settings) -> None:
    with factory() as s, s.begin():
        publish(s, world, doc(*(steps or (LINK_EMAIL,)), **settings), clock.now())


def messages_for(factory, appointment_id: str) -> list[Message]:
    with factory() as s:
        return list(s.scalars(select(Message).where(Message.appointment_id == appointment_id)
                              .order_by(Message.created_at, Message.idempotency_key)))


def meeting_posts(fake: FakeZoom) -> list:
    return fake.requests_to("/v2/users/me/meetings", "POST")


def token_grants(fake: FakeZoom, grant_type: str) -> list:
    return [r for r in fake.requests_to("/oauth/token", "POST") if r.form().get("grant_type") == grant_type]
