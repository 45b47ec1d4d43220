"""Webhook and Slack destinations never reach into the private network (#8): refused as written (save time) and
after resolution (send time), connecting to the checked address so DNS rebinding cannot switch it."""

from __future__ import annotations

import httpx
import pytest

from automations.errors import PermanentProviderError, ValidationError
from providers.destinations import Allowlist, PinnedTransport, check_destination, resolve_checked
from providers.http_actions import SlackWebhookSender, WebhookRequest, WebhookSender
from tests.fakes.slack_server import WebhookReceiver

LOCAL = Allowlist.parse(["127.0.0.0/8"])


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.1/", "http://2130706433/", "http://0x7f000001/", "http://017700000001/",
    "http://[::ffff:127.0.0.1]/", "http://[::1]:8080/x", "http://localhost:5432/", "http://LOCALHOST./",
    "http://db.localhost/", "http://10.0.0.5/", "http://172.16.3.4/", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data", "http://[fe80::1]/", "http://224.0.0.1/", "http://0.0.0.0/",
    "http://240.0.0.1/", "http://100.64.0.1/", "https://[fd00::1]/",
])
def test_private_and_local_destinations_are_refused_as_written(url):
    with pytest.raises(ValidationError) as info:
        check_destination(url)
    assert list(info.value.fields) == ["url"] and "public hosts" in info.value.fields["url"][0]


@pytest.mark.parametrize("url", ["https://hooks.slack.com/services/T/B/X", "http://93.184.216.34/x",
                                 "https://[2606:4700::1111]/"])
def test_public_destinations_pass(url):
    check_destination(url)


def test_the_operator_allowlist_lets_chosen_private_targets_through():
    allow = Allowlist.parse(["10.1.0.0/16", "crm.internal", "127.0.0.1"])
    check_destination("http://10.1.2.3/hook", allow)
    check_destination("http://crm.internal/hook", allow)
    check_destination("http://127.0.0.1:9000/", allow)
    with pytest.raises(ValidationError):
        check_destination("http://10.2.0.1/", allow)
    with pytest.raises(ValidationError):
        check_destination("ftp://example.com/", allow)


def test_names_are_checked_after_resolution():
    def resolver(answers):
        return lambda host, port: answers[host]

    with pytest.raises(PermanentProviderError) as info:
        resolve_checked("evil.example", 80, resolver=resolver({"evil.example": ["93.184.216.34", "127.0.0.1"]}))
    assert info.value.provider_code == "destination_refused" and "loopback" in info.value.message
    assert resolve_checked("ok.example", 443, resolver=resolver({"ok.example": ["93.184.216.34"]})) == "93.184.216.34"
    assert resolve_checked("crm.test", 80, LOCAL, resolver=resolver({"crm.test": ["127.0.0.1"]})) == "127.0.0.1"


def test_the_request_goes_to_the_checked_address_with_the_original_host_header():
    """The name resolves (once) to a loopback receiver the allowlist admits; the receiver sees the name as Host.
    A second answer pointing elsewhere (rebinding) is never asked for: the transport resolved once and pinned."""
    answers: list[str] = []

    def resolver(host, port):
        answers.append(host)
        return ["127.0.0.1"] if len(answers) == 1 else ["10.9.9.9"]

    with WebhookReceiver() as hook:
        port = hook.url().split(":")[2].split("/")[0]
        transport = PinnedTransport(LOCAL, resolver=resolver)
        with WebhookSender(httpx.Client(transport=transport), allow=Allowlist.parse(["127.0.0.0/8", "hooks.test"])) as s:
            result = s.send(WebhookRequest(url=f"http://hooks.test:{port}/hook", body="hi"))
        assert result.status_code == 200 and answers == ["hooks.test"]
        (request,) = hook.requests
        assert request.header("Host") == f"hooks.test:{port}"


def test_a_name_resolving_into_the_private_network_is_refused_at_send_time():
    transport = PinnedTransport(resolver=lambda host, port: ["192.168.0.10"])
    with WebhookSender(httpx.Client(transport=transport)) as sender, pytest.raises(PermanentProviderError) as info:
        sender.send(WebhookRequest(url="http://rebind.example/hook"))
    assert info.value.provider_code == "destination_refused" and not info.value.retryable


def test_default_senders_refuse_loopback_literals_before_connecting():
    with WebhookReceiver() as hook:
        with WebhookSender() as sender, pytest.raises(PermanentProviderError) as info:
            sender.send(WebhookRequest(url=hook.url()))
        with SlackWebhookSender() as slack, pytest.raises(PermanentProviderError):
            slack.send(hook.url(), "hi")
        assert hook.requests == [] and info.value.provider_code == "destination_refused"
