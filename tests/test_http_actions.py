"""Generic webhook and Slack incoming-webhook senders against local fakes (contract §6;
fakes in ``tests/fakes/slack_server.py``)."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from automations.clock import FrozenClock
from automations.errors import PermanentProviderError, RetryableProviderError
from providers.destinations import Allowlist
from providers.http_actions import (
    MAX_RESPONSE_BYTES,
    SLACK_DEAD_WEBHOOK_ERRORS,
    BasicAuth,
    BearerAuth,
    SlackWebhookSender,
    WebhookRequest,
    WebhookSender,
    validate_target_url,
)
from tests.fakes.slack_server import FakeSlack, WebhookReceiver

LOCAL = Allowlist.parse(["127.0.0.0/8"])


@pytest.fixture
def hook():
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def slack():
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def webhooks():
    with WebhookSender(timeout=5, allow=LOCAL) as sender:
        yield sender


@pytest.fixture
def slack_sender():
    with SlackWebhookSender(timeout=5, allow=LOCAL) as sender:
        yield sender


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections (backlog) and never answers: requests to it time out."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- generic webhook ----------------------------------------------------------------------------------


def test_post_json_body_with_bearer_auth_and_headers(hook, webhooks):
    body = json.dumps({"appointment": "apt_1", "status": "confirmed"})
    request = WebhookRequest(
        url=hook.url("/in?src=punctual"),
        body=body,
        headers={"X-Workflow": "wf_9"},
        auth=BearerAuth("s3cret"),
    )

    result = webhooks.send(request)

    assert result.status_code == 200 and result.body == "ok" and not result.truncated
    [got] = hook.wait_for_requests(1)
    assert got.method == "POST" and got.target == "/in?src=punctual"
    assert got.header("Authorization") == "Bearer s3cret"
    assert got.header("X-Workflow") == "wf_9"
    assert got.header("Content-Type") == "application/json"
    assert got.json() == {"appointment": "apt_1", "status": "confirmed"}


def test_basic_auth_plain_text_body_and_other_methods(hook, webhooks):
    webhooks.send(WebhookRequest(url=hook.url(), method="put", body="hello", auth=BasicAuth("ann", "p:w")))
    webhooks.send(WebhookRequest(url=hook.url("/x"), method="GET"))

    put, get = hook.wait_for_requests(2)
    assert put.method == "PUT" and put.body == b"hello"
    assert put.header("Content-Type") == "text/plain; charset=utf-8"
    assert put.header("Authorization") == "Basic " + base64.b64encode(b"ann:p:w").decode()
    assert get.method == "GET" and get.body == b""


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "/relative",
        "http://",
        "gopher://h/",
    ],
)
def test_only_http_and_https_targets(webhooks, url):
    with pytest.raises(PermanentProviderError) as caught:
        webhooks.send(WebhookRequest(url=url))
    assert caught.value.provider_code == "invalid_url"


def test_validate_target_url_accepts_http_and_https():
    assert validate_target_url(" https://example.com/a?b=1 ") == "https://example.com/a?b=1"
    assert validate_target_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/"


@pytest.mark.parametrize("headers", [{"X-Evil": "a\r\nX-Injected: 1"}, {"Bad Name": "v"}, {"X:Colon": "v"}])
def test_header_injection_is_refused(hook, webhooks, headers):
    with pytest.raises(PermanentProviderError) as caught:
        webhooks.send(WebhookRequest(url=hook.url(), headers=headers))
    assert caught.value.provider_code == "invalid_header"
    assert hook.requests == []


def test_unsupported_method_is_permanent(webhooks, hook):
    with pytest.raises(PermanentProviderError):
        webhooks.send(WebhookRequest(url=hook.url(), method="TRACE"))


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_server_errors_and_throttling_are_retryable_with_retry_after(hook, webhooks, status):
    hook.respond(status, "busy", headers={"Retry-After": "7"})

    with pytest.raises(RetryableProviderError) as caught:
        webhooks.send(WebhookRequest(url=hook.url(), body="{}"))

    assert caught.value.provider_code == str(status)
    assert caught.value.retry_after == 7.0


def test_retry_after_http_date(hook):
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    hook.respond(503, headers={"Retry-After": format_datetime(now.replace(second=30), usegmt=True)})
    with WebhookSender(clock=FrozenClock(now), allow=LOCAL) as sender, pytest.raises(RetryableProviderError) as caught:
        sender.send(WebhookRequest(url=hook.url()))
    assert caught.value.retry_after == 30.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_client_errors_are_permanent(hook, webhooks, status):
    hook.respond(status, "nope")
    with pytest.raises(PermanentProviderError) as caught:
        webhooks.send(WebhookRequest(url=hook.url()))
    assert caught.value.provider_code == str(status)
    assert "nope" not in caught.value.message  # the remote body is never repeated to the tenant


def test_redirects_are_not_followed(hook, webhooks):
    hook.respond(301, headers={"Location": "http://169.254.169.254/latest/meta-data"})
    with pytest.raises(PermanentProviderError, match="redirect, not followed") as caught:
        webhooks.send(WebhookRequest(url=hook.url()))
    assert caught.value.provider_code == "301"
    assert len(hook.requests) == 1


def test_response_body_is_capped(hook, webhooks):
    hook.respond(200, b"x" * (MAX_RESPONSE_BYTES * 3))

    result = webhooks.send(WebhookRequest(url=hook.url()))

    assert result.truncated
    assert len(result.body) == MAX_RESPONSE_BYTES


def test_connection_refused_is_retryable(webhooks):
    with pytest.raises(RetryableProviderError) as caught:
        webhooks.send(WebhookRequest(url=f"http://127.0.0.1:{_closed_port()}/x"))
    assert caught.value.provider_code == "connection_error"
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


def test_timeout_is_retryable(silent_port):
    with WebhookSender(timeout=0.3, allow=LOCAL) as sender, pytest.raises(RetryableProviderError) as caught:
        sender.send(WebhookRequest(url=f"http://127.0.0.1:{silent_port}/x"))
    assert caught.value.provider_code == "timeout"


def test_injected_client_is_used_and_left_open():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, text="accepted")

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with WebhookSender(client) as sender:
        result = sender.send(WebhookRequest(url="https://hooks.example.com/a", body="x"))
    assert result.status_code == 202 and seen[0].url == "https://hooks.example.com/a"
    assert not client.is_closed  # borrowed, not owned
    client.close()


# -- Slack ---------------------------------------------------------------------------------------------


def test_slack_posts_json_text_and_blocks(slack, slack_sender):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Reminder failed* for `apt_123`"}}]

    result = slack_sender.send(slack.webhook_url, "Reminder failed for apt_123", blocks=blocks)

    assert result.status_code == 200 and result.body == "ok"
    assert slack.posted == [{"text": "Reminder failed for apt_123", "blocks": blocks}]
    [request] = slack.requests
    assert request.header("Content-Type").startswith("application/json")


def test_slack_revoked_webhook_is_permanent_and_dead(slack, slack_sender):
    slack.revoke()
    with pytest.raises(PermanentProviderError, match="disable") as caught:
        slack_sender.send(slack.webhook_url, "hi")
    assert caught.value.provider_code == "no_service"
    assert caught.value.provider_code in SLACK_DEAD_WEBHOOK_ERRORS


def test_slack_archived_channel_is_permanent(slack, slack_sender):
    slack.archive()
    with pytest.raises(PermanentProviderError) as caught:
        slack_sender.send(slack.webhook_url, "hi")
    assert caught.value.provider_code == "channel_is_archived"


def test_slack_unknown_hook_is_no_service(slack, slack_sender):
    with pytest.raises(PermanentProviderError) as caught:
        slack_sender.send(slack.base_url + "/services/T1/B1/wrong", "hi")
    assert caught.value.provider_code == "no_service"


def test_slack_rate_limit_is_retryable_with_retry_after(slack, slack_sender):
    slack.rate_limit(1, retry_after=1)

    with pytest.raises(RetryableProviderError) as caught:
        slack_sender.send(slack.webhook_url, "hi")

    assert caught.value.retry_after == 1.0 and caught.value.provider_code == "429"
    assert slack_sender.send(slack.webhook_url, "hi again").body == "ok"
    assert slack.posted == [{"text": "hi again"}]


def test_slack_server_error_is_retryable(slack, slack_sender):
    slack.fail_next(1, status=500, body="rollup_error")
    with pytest.raises(RetryableProviderError) as caught:
        slack_sender.send(slack.webhook_url, "hi")
    assert caught.value.provider_code == "500"  # an undocumented body is not repeated


def test_slack_rejects_non_json_with_invalid_payload(slack, webhooks):
    """The fake follows §6: non-JSON bodies are ``400 invalid_payload``; the Slack sender maps that."""
    with pytest.raises(PermanentProviderError) as caught:
        webhooks.send(
            WebhookRequest(url=slack.webhook_url, body="text=hi", headers={"Content-Type": "text/plain"})
        )
    assert caught.value.provider_code == "400" and "invalid_payload" not in caught.value.message

    slack.fail_next(1, status=400, body="invalid_payload")
    with SlackWebhookSender(allow=LOCAL) as sender, pytest.raises(PermanentProviderError) as slack_caught:
        sender.send(slack.webhook_url, "hi")
    assert slack_caught.value.provider_code == "invalid_payload"


def test_slack_empty_text_never_leaves(slack, slack_sender):
    with pytest.raises(PermanentProviderError) as caught:
        slack_sender.send(slack.webhook_url, "  ")
    assert caught.value.provider_code == "no_text"
    assert slack.requests == []


def test_slack_url_must_be_http(slack_sender):
    with pytest.raises(PermanentProviderError):
        slack_sender.send("ftp://hooks.slack.com/services/T/B/X", "hi")


def test_slack_unreachable_is_retryable(slack_sender):
    with pytest.raises(RetryableProviderError):
        slack_sender.send(f"http://127.0.0.1:{_closed_port()}/services/T/B/X", "hi")
