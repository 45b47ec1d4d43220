"""Bad numbers and bytes are 4xx before anything is saved, on every route: infinity from ``1e400``,
NUL characters in API text and in Twilio webhook form fields, 10,000-deep JSON (also on /hooks/zoom),
a 400-digit Zoom timestamp header, and booleans that are not exactly true/false. Every response
carries the security headers; HSTS only over HTTPS; no server version banner."""

from __future__ import annotations

import dataclasses
import json

from automations.store.models import Contact, InboundMessage, Workflow
from providers.zoom_webhooks import sign
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    count,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)
from web.app import create_app


def test_infinite_numbers_are_refused(api, factory, world):
    before = count(factory, Contact), count(factory, Workflow)
    raw = '{"first_name": "Ann", "custom_fields": {"score": 1e400}}'
    response = api.post("/contacts", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "out of range" in response.get_json()["error"]["message"]
    doc = json.dumps(confirmation_doc()).replace('"days": 1', '"days": -1e999')
    assert api.post("/workflows", data=doc, headers={"Content-Type": "application/json"}).status_code == 400
    assert (count(factory, Contact), count(factory, Workflow)) == before


def test_nul_characters_are_refused_in_api_text(api, factory, world):
    before = count(factory, Contact)
    response = api.post("/contacts", {"first_name": "A\x00B"})
    assert response.status_code == 422 and "first_name" in error_fields(response)
    response = api.get("/contacts?email=a%00b@example.com")
    assert response.status_code == 422 and "email" in error_fields(response)
    assert count(factory, Contact) == before


def test_nul_in_twilio_webhook_fields_is_a_422_before_anything_is_read(app, factory, world):
    before = count(factory, InboundMessage)
    response = app.test_client().post("/hooks/twilio/inbound", data={"From": "+15555550100", "Body": "STOP\x00"})
    assert response.status_code == 422
    assert error_fields(response) == {"Body": ["must not contain NUL characters"]}
    assert count(factory, InboundMessage) == before


def test_deep_json_is_refused_everywhere(api, app, world):
    deep = "[" * 10_000 + "]" * 10_000
    assert api.post("/workflows", data=deep, headers={"Content-Type": "application/json"}).status_code == 400
    hook = app.test_client().post("/hooks/zoom", data='{"a": ' + deep + "}",
                                  headers={"Content-Type": "application/json"})
    assert hook.status_code == 400 and "nested" in hook.get_json()["error"]["message"]
    # Brackets inside strings are text, not nesting.
    fine = api.post("/contacts", {"first_name": "[" * 90})
    assert fine.status_code == 201


def test_absurd_zoom_timestamp_is_a_4xx(factory, clock, spy_runtime, world):
    secret = "zoom-secret"
    app = create_app(factory=factory, clock=clock, runtime=spy_runtime,
                     settings=dataclasses.replace(create_app().extensions["punctual"].settings,
                                                  zoom_webhook_secret=secret))
    body = b'{"event": "app_deauthorized", "payload": {}}'
    timestamp = "9" * 400
    response = app.test_client().post("/hooks/zoom", data=body, headers={
        "Content-Type": "application/json", "x-zm-request-timestamp": timestamp,
        "x-zm-signature": sign(secret, timestamp, body)})
    assert 400 <= response.status_code < 500


def test_booleans_are_only_true_or_false(api, factory, world):
    before = count(factory, Contact)
    for bad in (0, 1, "yes", "on", "true", None):
        response = api.post("/contacts", {"first_name": "Ann", "sms_dnd": bad})
        assert response.status_code == 422 and "sms_dnd" in error_fields(response), bad
    assert count(factory, Contact) == before
    for bad in ("1", "yes", "on", "True"):
        response = api.get(f"/notifications?unread={bad}")
        assert response.status_code == 422 and "unread" in error_fields(response), bad
    assert api.get("/notifications?unread=true").status_code == 200


def test_security_headers_on_every_response(api, app, world):
    for response in (api.get("/contacts"), api.get("/nope"), app.test_client().get("/healthz"),
                     app.test_client().post("/hooks/twilio/inbound", data={"Body": "x"})):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"]
        assert "Strict-Transport-Security" not in response.headers
        assert response.headers["Server"] == "Punctual"
    secure = app.test_client().get("/healthz", base_url="https://punctual.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=")


