"""Fixtures for end-to-end delivery tests: the engine wired to real providers from settings (``automations.wiring``),
pointed at local servers — a fake Twilio (``tests/fakes/twilio_server.py``), a real SMTP server (aiosmtpd)
— and the Flask app served on a real socket so the fake can POST signed callbacks to it.

The public URL is ``https://punctual.example``: Twilio signs callbacks for it, and the fake delivers them
to the local server as a TLS-terminating proxy would (``via=``), so signature checks run exactly as in
production. Time is the test's FrozenClock everywhere (runtime and app); waits on servers are bounded.

Modules import the fixtures they use: ``from tests.delivery_fixtures import twilio_fixture  # noqa: F401``.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
import uuid
from dataclasses import dataclass, replace

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from werkzeug.serving import make_server

from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.wiring import build_providers
from providers.twilio_signature import compute_signature
from tests.fakes.twilio_server import FakeTwilio
from web.app import create_app

PUBLIC_URL = "https://punctual.example"
FROM_NUMBER = "+15005550006"  # Twilio's magic "valid From" (contract §2.4)


class SmtpRecorder:
    """An aiosmtpd handler keeping every delivered message, its envelope and its connection (peer)."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.url = ""  # smtp://127.0.0.1:<port>, set when the server starts

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.endswith("@bounce.test"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        # Appended before the 250 goes back, so the sender sees it as soon as send_message returns.
        self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                              "peer": session.peer,
                              "msg": email.message_from_bytes(raw, policy=email.policy.default)})
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(name="smtp")
def smtp_fixture():
    """A real SMTP server on 127.0.0.1 (aiosmtpd; port=0 does not work with 1.4, so pick one first)."""
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    recorder.url = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield recorder
    finally:
        controller.stop()


@pytest.fixture(name="twilio")
def twilio_fixture():
    with FakeTwilio() as fake:
        yield fake


class LiveApp:
    """The Flask app on a real socket (werkzeug's threaded server), for callbacks from fakes."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       name="live-app", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> LiveApp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class Wired:
    """A runtime with providers built from settings by ``automations.wiring``, and the app serving hooks."""

    settings: Settings
    runtime: Runtime
    app: Flask
    live: LiveApp
    twilio: FakeTwilio

    @property
    def client(self):
        return self.app.test_client()

    def post_signed(self, path: str, form: dict, *, signature: str | None = None, query: str = ""):
        """POST ``form`` to ``path`` as Twilio would: signed for the public URL with the auth token."""
        url = f"{PUBLIC_URL}{path}{query}"
        sig = compute_signature(self.settings.twilio_auth_token, url, form) if signature is None else signature
        return self.client.post(f"{path}{query}", data=form, headers={"X-Twilio-Signature": sig})

    def inbound(self, body: str, *, sender: str = "+12125550123", sid: str | None = None, **extra: str):
        form = {"MessageSid": sid or "SM" + uuid.uuid4().hex,
                "AccountSid": self.twilio.account_sid, "From": sender, "To": FROM_NUMBER, "Body": body,
                "NumMedia": "0", "SmsStatus": "received", "ApiVersion": "2010-04-01", **extra}
        return self.post_signed("/hooks/twilio/inbound", form)


def wired_settings(twilio: FakeTwilio, **overrides) -> Settings:
    base = Settings(batch_size=100, public_url=PUBLIC_URL, twilio_account_sid=twilio.account_sid,
                    twilio_auth_token=twilio.auth_token, twilio_from_number=FROM_NUMBER,
                    twilio_base_url=twilio.base_url, secret_key="test-secret", outbound_allow=("127.0.0.0/8",))
    return replace(base, **overrides)


@pytest.fixture(name="wire")
def wire_fixture(factory, clock, twilio):
    """``wire(**settings_overrides) -> Wired``; everything is stopped at the end of the test."""
    started: list[LiveApp] = []

    def build(*, providers=None, **overrides) -> Wired:
        settings = wired_settings(twilio, **overrides)
        runtime = Runtime(factory, clock=clock, settings=settings, owner="test-worker",
                          providers=providers or build_providers(settings, factory, clock=clock))
        app = create_app(factory=factory, clock=clock, runtime=runtime, settings=settings)
        app.testing = True
        live = LiveApp(app).__enter__()
        started.append(live)
        return Wired(settings, runtime, app, live, twilio)

    yield build
    for live in started:
        live.__exit__(None, None, None)
