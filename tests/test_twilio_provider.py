"""Twilio SMS, Voice and signature verification through the official ``twilio`` client and the local fake
(contract §2, §3; fake in ``tests/fakes/twilio_server.py``)."""

from __future__ import annotations

import hashlib
import json
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client, EnvironBuilder

from automations.clock import FrozenClock
from automations.errors import PermanentProviderError, RetryableProviderError
from providers.base import OutgoingSms, SendResult
from providers.twilio_common import classify_code, map_call_status, map_message_status, status_moves_forward
from providers.twilio_signature import (
    TwilioSignatureVerifier,
    compute_signature,
    public_request_url,
    url_from_environ,
    verify_signature,
)
from providers.twilio_sms import TwilioSmsSender
from providers.twilio_voice import OutgoingCall, OutgoingVoicemail, TwilioVoiceCaller, voicemail_twiml
from tests.fakes.slack_server import WebhookReceiver
from tests.fakes.twilio_server import FakeTwilio

FROM = "+15005550006"
TO = "+15551234567"


@pytest.fixture
def twilio():
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def receiver():
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def sms(twilio, receiver) -> TwilioSmsSender:
    return TwilioSmsSender(
        twilio.account_sid,
        twilio.auth_token,
        from_number=FROM,
        status_callback=receiver.url("/hooks/twilio/status?tenant=t1"),
        base_url=twilio.base_url,
        timeout=5,
    )


@pytest.fixture
def voice(twilio, receiver) -> TwilioVoiceCaller:
    return TwilioVoiceCaller(
        twilio.account_sid,
        twilio.auth_token,
        from_number=FROM,
        status_callback=receiver.url("/hooks/twilio/voice-status"),
        base_url=twilio.base_url,
        timeout=5,
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- SMS ----------------------------------------------------------------------------------------------


def test_send_sms_goes_through_the_real_client_to_the_fake(twilio, sms, receiver):
    result = sms.send(OutgoingSms("msg_1", TO, "Reminder: tomorrow at 10:00"))

    assert isinstance(result, SendResult)
    assert result.provider == "twilio" and result.status == "sent"
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34
    assert result.detail["twilio_status"] == "queued"
    [request] = twilio.api_requests("Messages")
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.auth == (twilio.account_sid, twilio.auth_token)
    assert request.header("Content-Type").startswith("application/x-www-form-urlencoded")
    assert request.form == {
        "To": [TO],
        "From": [FROM],
        "Body": ["Reminder: tomorrow at 10:00"],
        "StatusCallback": [receiver.url("/hooks/twilio/status?tenant=t1")],
    }


def test_the_environment_proxy_settings_are_read_once_when_the_sender_is_built(twilio, receiver, monkeypatch):
    """The proxy the environment names when the sender is built is used; the environment is not read again on
    every request (requests would, at a cost of ~8 % of a worker's CPU), so a proxy variable set later, here one
    pointing at a closed port, changes nothing until the next start."""
    dead_proxy = f"http://127.0.0.1:{_closed_port()}"
    for name in ("http_proxy", "all_proxy", "ALL_PROXY", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    proxied = TwilioSmsSender(twilio.account_sid, twilio.auth_token, from_number=FROM, base_url=twilio.base_url,
                              timeout=5)
    assert proxied._router.inner.proxy == {"http": dead_proxy}
    with pytest.raises(RetryableProviderError):  # the proxy read at start-up is honoured: it refuses
        proxied.send(OutgoingSms("msg_p", TO, "via the proxy"))

    monkeypatch.delenv("HTTP_PROXY")
    direct = TwilioSmsSender(twilio.account_sid, twilio.auth_token, from_number=FROM, base_url=twilio.base_url,
                             timeout=5)
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)  # set after start-up: not read per request
    assert isinstance(direct.send(OutgoingSms("msg_d", TO, "direct")), SendResult)
    assert [r.form["Body"] for r in twilio.api_requests("Messages")] == [["direct"]]


def test_messaging_service_replaces_from(twilio, receiver):
    sender = TwilioSmsSender(
        twilio.account_sid, twilio.auth_token, messaging_service_sid="MG" + "1" * 32, base_url=twilio.base_url
    )

    result = sender.send(OutgoingSms("msg_2", TO, "hi"))

    assert result.status == "sent" and result.detail["twilio_status"] == "accepted"
    form = twilio.requests[-1].form
    assert form["MessagingServiceSid"] == ["MG" + "1" * 32] and "From" not in form


def test_mms_sends_each_media_url(twilio, sms):
    media = ("https://cdn.example.com/map.png", "https://cdn.example.com/card.pdf")

    result = sms.send(OutgoingSms("msg_3", TO, "Directions attached", media_urls=media))

    assert result.provider_id.startswith("MM")
    assert twilio.requests[-1].form["MediaUrl"] == list(media)
    assert twilio.messages[result.provider_id]["num_media"] == "2"


@pytest.mark.parametrize(
    ("to", "code", "kind"),
    [
        ("+15005550001", "21211", "invalid_recipient"),
        ("+15005550002", "21612", "invalid_recipient"),
        ("+15005550003", "21408", "config"),
        ("+15005550004", "21610", "opted_out"),
        ("+15005550009", "21614", "invalid_recipient"),
        ("5551234567", "21211", "invalid_recipient"),
    ],
)
def test_magic_to_numbers_are_permanent(sms, to, code, kind):
    with pytest.raises(PermanentProviderError) as caught:
        sms.send(OutgoingSms("msg_4", to, "hi"))

    error = caught.value
    assert error.provider_code == code and not error.retryable
    assert classify_code(error.provider_code) == kind
    assert isinstance(error.__cause__, TwilioRestException)
    assert error.__cause__.status == 400


def test_opted_out_recipient_says_so(twilio, sms):
    twilio.opt_out("+15557654321")
    with pytest.raises(PermanentProviderError, match="opted out") as caught:
        sms.send(OutgoingSms("msg_5", "+15557654321", "hi"))
    assert caught.value.provider_code == "21610"


@pytest.mark.parametrize(
    ("sender", "error_type", "code"),
    [
        ("+15005550001", PermanentProviderError, "21212"),
        ("+15005550007", PermanentProviderError, "21606"),
        ("+15005550008", RetryableProviderError, "21611"),  # queue full: try later
    ],
)
def test_magic_from_numbers(sms, sender, error_type, code):
    with pytest.raises(error_type) as caught:
        sms.send(OutgoingSms("msg_6", TO, "hi", from_number=sender))
    assert caught.value.provider_code == code


def test_429_is_retryable_with_retry_after_then_recovers(twilio, sms):
    twilio.fail_next(1, status=429, code=20429, retry_after=7)

    with pytest.raises(RetryableProviderError) as caught:
        sms.send(OutgoingSms("msg_7", TO, "hi"))

    assert caught.value.provider_code == "20429"
    assert caught.value.retry_after == 7.0
    assert sms.send(OutgoingSms("msg_7", TO, "hi")).provider_id.startswith("SM")


def test_retry_after_as_http_date_uses_the_injected_clock(twilio):
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    sender = TwilioSmsSender(
        twilio.account_sid,
        twilio.auth_token,
        from_number=FROM,
        base_url=twilio.base_url,
        clock=FrozenClock(now),
    )
    twilio.fail_next(1, status=503, retry_after=format_datetime(now.replace(minute=2), usegmt=True))

    with pytest.raises(RetryableProviderError) as caught:
        sender.send(OutgoingSms("msg_8", TO, "hi"))

    assert caught.value.retry_after == 120.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retryable_without_retry_after(twilio, sms, status):
    twilio.fail_next(1, status=status)
    with pytest.raises(RetryableProviderError) as caught:
        sms.send(OutgoingSms("msg_9", TO, "hi"))
    assert caught.value.retry_after is None
    assert caught.value.provider_code == str(20000 + status)


def test_bad_credentials_are_permanent(twilio):
    sender = TwilioSmsSender(twilio.account_sid, "wrong-token", from_number=FROM, base_url=twilio.base_url)
    with pytest.raises(PermanentProviderError) as caught:
        sender.send(OutgoingSms("msg_10", TO, "hi"))
    assert caught.value.provider_code == "20003"
    assert classify_code("20003") == "config"


def test_unreachable_twilio_is_retryable():
    sender = TwilioSmsSender(
        "AC" + "0" * 32, "token", from_number=FROM, base_url=f"http://127.0.0.1:{_closed_port()}", timeout=2
    )
    with pytest.raises(RetryableProviderError) as caught:
        sender.send(OutgoingSms("msg_11", TO, "hi"))
    assert caught.value.provider_code == "connection_error"
    assert isinstance(caught.value.__cause__, requests.exceptions.ConnectionError)


def test_doomed_messages_never_leave(twilio):
    no_sender = TwilioSmsSender(twilio.account_sid, twilio.auth_token, base_url=twilio.base_url)
    with pytest.raises(PermanentProviderError):
        no_sender.send(OutgoingSms("msg_12", TO, "hi"))
    sender = TwilioSmsSender(
        twilio.account_sid, twilio.auth_token, from_number=FROM, base_url=twilio.base_url
    )
    with pytest.raises(PermanentProviderError) as caught:
        sender.send(OutgoingSms("msg_13", TO, "x" * 1601))
    assert caught.value.provider_code == "21617"
    assert twilio.requests == []


def test_injected_http_client_is_used(twilio):
    """§2.8 mechanism C: an in-memory HttpClient still works; the production URL is left alone."""

    class InMemory(HttpClient):
        def __init__(self) -> None:
            super().__init__(logger=None, is_async=False)
            self.calls: list = []

        def request(self, method, uri, params=None, data=None, headers=None, auth=None, timeout=None, **kw):
            self.calls.append((method, uri, data, timeout))
            if data["To"] == "+15005550004":
                body = {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}
                return Response(400, json.dumps(body), {"Content-Type": "application/json"})
            return Response(201, json.dumps({"sid": "SM" + "a" * 32, "status": "sent"}), {})

    fake_http = InMemory()
    sender = TwilioSmsSender("AC" + "0" * 32, "token", from_number=FROM, http_client=fake_http, timeout=3)

    result = sender.send(OutgoingSms("msg_14", TO, "hi"))
    with pytest.raises(PermanentProviderError):
        sender.send(OutgoingSms("msg_15", "+15005550004", "hi"))

    assert result.provider_id == "SM" + "a" * 32 and result.status == "sent"
    method, uri, data, timeout = fake_http.calls[0]
    assert uri.startswith("https://api.twilio.com/2010-04-01/Accounts/")
    assert data["To"] == TO and timeout == 3
    assert twilio.requests == []


def test_status_mapping_and_ordering():
    assert map_message_status("queued") == "sent"
    assert map_message_status("delivered") == "delivered"
    assert map_message_status("undelivered") == "undelivered"
    assert map_message_status("failed") == "failed"
    assert map_call_status("completed") == "delivered" and map_call_status("no-answer") == "undelivered"
    assert status_moves_forward("sent", "delivered")
    assert not status_moves_forward("delivered", "sent")
    assert classify_code(30003) == "retryable" and classify_code(30007) == "other"


# -- status callbacks and signatures ------------------------------------------------------------------


def _seen_url(request) -> str:
    """The URL as the app behind the receiver sees it (Host header + raw request target)."""
    return f"http://{request.header('Host')}{request.target}"


def test_status_callback_is_signed_and_validates(twilio, sms, receiver):
    sid = sms.send(OutgoingSms("msg_20", TO, "hi")).provider_id

    delivery = twilio.send_status_callback(sid, "undelivered", error_code=30003)

    assert delivery.status_code == 200
    [callback] = receiver.wait_for_requests(1)
    assert callback.form_value("MessageSid") == sid
    assert callback.form_value("MessageStatus") == "undelivered"
    assert callback.form_value("ErrorCode") == "30003"
    assert callback.target == "/hooks/twilio/status?tenant=t1"
    signature = callback.header("X-Twilio-Signature")
    assert verify_signature(twilio.auth_token, _seen_url(callback), callback.form, signature)
    verifier = TwilioSignatureVerifier(twilio.auth_token)
    assert verifier.verify(_seen_url(callback), callback.form, callback.headers)


def test_tampered_status_callback_fails(twilio, sms, receiver):
    sid = sms.send(OutgoingSms("msg_21", TO, "hi")).provider_id
    twilio.send_status_callback(sid, "delivered")
    [callback] = receiver.wait_for_requests(1)
    url, signature = _seen_url(callback), callback.header("X-Twilio-Signature")

    tampered_form = {**callback.form, "MessageStatus": ["failed"]}
    extra_field = {**callback.form, "ErrorCode": ["30007"]}
    assert not verify_signature(twilio.auth_token, url, tampered_form, signature)
    assert not verify_signature(twilio.auth_token, url, extra_field, signature)
    assert not verify_signature(
        twilio.auth_token, url.replace("tenant=t1", "tenant=t2"), callback.form, signature
    )
    assert not verify_signature("another-token", url, callback.form, signature)
    assert not verify_signature(twilio.auth_token, url, callback.form, "")
    assert not verify_signature(twilio.auth_token, url, callback.form, None)


def test_callback_behind_a_proxy_needs_the_public_url(twilio, receiver):
    public = "https://app.example.com/hooks/twilio/status?tenant=t1"
    sender = TwilioSmsSender(
        twilio.account_sid,
        twilio.auth_token,
        from_number=FROM,
        status_callback=public,
        base_url=twilio.base_url,
    )
    sid = sender.send(OutgoingSms("msg_22", TO, "hi")).provider_id

    twilio.send_status_callback(sid, "delivered", via=receiver.base_url)

    [callback] = receiver.wait_for_requests(1)
    seen = _seen_url(callback)  # http://127.0.0.1:<port>/hooks/twilio/status?tenant=t1
    token = twilio.auth_token
    assert not TwilioSignatureVerifier(token).verify(seen, callback.form, callback.headers)
    by_config = TwilioSignatureVerifier(token, public_base_url="https://app.example.com")
    assert by_config.verify(seen, callback.form, callback.headers)
    # The library also accepts the explicit default port (Twilio signs inconsistently, §2.7).
    with_port = public_request_url(seen, public_base_url="https://app.example.com:443")
    assert verify_signature(token, with_port, callback.form, callback.header("X-Twilio-Signature"))


def _environ_seen_behind(proxies: int, headers: dict) -> dict:
    """The WSGI environ the app sees for a request through Werkzeug's ProxyFix trusting ``proxies`` hops."""
    seen: dict = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("204 No Content", [])
        return [b""]

    wrapped = ProxyFix(app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies, x_prefix=proxies)
    builder = EnvironBuilder(path="/hooks/t", query_string="x=%2B1&y=caf%C3%A9", base_url="http://10.0.0.5:8000",
                             headers=headers)
    Client(wrapped).open(builder)
    return seen


def test_public_request_url_rules_behind_proxies():
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "app.example.com", "X-Forwarded-Port": "443",
                 "X-Forwarded-Prefix": "/punctual"}
    # Not trusted (the default, 0 proxies): whatever a client claims in X-Forwarded-* is ignored.
    assert url_from_environ(_environ_seen_behind(0, forwarded)) == "http://10.0.0.5:8000/hooks/t?x=%2B1&y=caf%C3%A9"
    assert (url_from_environ(_environ_seen_behind(1, forwarded))
            == "https://app.example.com/punctual/hooks/t?x=%2B1&y=caf%C3%A9")
    port = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.example", "X-Forwarded-Port": "8443"}
    assert url_from_environ(_environ_seen_behind(1, port)).startswith("https://a.example:8443/hooks/t?")
    seen = "http://10.0.0.5:8000/hooks/t?x=%2B1&y=caf%C3%A9"
    assert (
        public_request_url(seen, public_base_url="https://a.example/punctual")
        == "https://a.example/punctual/hooks/t?x=%2B1&y=caf%C3%A9"
    )


def test_contract_worked_examples():
    example1 = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url1 = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert compute_signature("12345", url1, example1) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert verify_signature("12345", url1, example1, "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    example2 = {
        "AccountSid": "AC00000000000000000000000000000000",
        "ApiVersion": "2010-04-01",
        "ErrorCode": "30003",
        "From": "+15005550006",
        "MessageSid": "SM11111111111111111111111111111111",
        "MessageStatus": "undelivered",
        "SmsSid": "SM11111111111111111111111111111111",
        "SmsStatus": "undelivered",
        "To": "+15551234567",
    }
    token2 = "test_auth_token_0000000000000000"
    for url in (
        "https://hooks.example.com/twilio/status?tenant=t1",
        "https://hooks.example.com:443/twilio/status?tenant=t1",
    ):
        assert verify_signature(token2, url, example2, "dk9Zxl/AOO7holzQ09eS1t2mYP8=")


def test_repeated_fields_get_and_json_bodies():
    token, url = "tok", "https://a.example/in"
    form = {"MediaUrl": ["https://m/2", "https://m/1"], "Body": "hi"}
    signature = compute_signature(token, url, form)
    assert verify_signature(token, url, form, signature)
    pairs = [("MediaUrl", "https://m/1"), ("MediaUrl", "https://m/2"), ("Body", "hi")]  # parse_qsl-style
    assert verify_signature(token, url, pairs, signature)
    assert not verify_signature(token, url, {"MediaUrl": ["https://m/1"], "Body": "hi"}, signature)
    # GET webhooks: everything is in the query string, nothing in params.
    get_url = "https://a.example/in?From=%2B1555&Body=hi"
    assert verify_signature(token, get_url, None, compute_signature(token, get_url))
    # JSON webhooks: the body is covered by bodySHA256 in the signed URL.
    body = '{"a": 1}'
    json_url = f"https://a.example/j?bodySHA256={hashlib.sha256(body.encode()).hexdigest()}"
    json_signature = compute_signature(token, json_url)
    assert verify_signature(token, json_url, body, json_signature)
    assert not verify_signature(token, json_url, '{"a": 2}', json_signature)
    assert not verify_signature(token, "https://a.example/j", body, json_signature)


def test_url_from_wsgi_environ_keeps_the_raw_query():
    """Werkzeug's request.url decodes %C3%A9 to 'é'; Twilio signed the encoded form."""
    token, public = "tok", "https://app.example.com/hooks/tw?name=caf%C3%A9&n=%2B1"
    form = {"CallSid": "CA1", "CallStatus": "completed"}
    signature = compute_signature(token, public, form)
    environ = EnvironBuilder(
        path="/hooks/tw",
        query_string="name=caf%C3%A9&n=%2B1",
        base_url="http://127.0.0.1:8000",
        method="POST",
        data=form,
        headers={
            "X-Twilio-Signature": signature,
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "app.example.com",
        },
    ).get_environ()
    environ["RAW_URI"] = "/hooks/tw?name=caf%C3%A9&n=%2B1"
    assert not TwilioSignatureVerifier(token).verify_environ(environ, form)  # proxy headers not trusted
    ProxyFix(lambda env, start: [], x_proto=1, x_host=1)(environ, lambda *a: None)  # trusted: one proxy
    assert url_from_environ(environ) == public
    assert TwilioSignatureVerifier(token).verify_environ(environ, form)
    # Without RAW_URI/REQUEST_URI (other WSGI servers) the URL is rebuilt from PATH_INFO + QUERY_STRING.
    bare = {k: v for k, v in environ.items() if k not in ("RAW_URI", "REQUEST_URI")}
    assert url_from_environ(bare) == public


# -- Voice --------------------------------------------------------------------------------------------


def _twiml(request) -> ET.Element:
    return ET.fromstring(request.form_value("Twiml"))


def test_call_action_whispers_then_connects(twilio, voice):
    result = voice.call(
        OutgoingCall(
            "msg_30", user_phone="+15550001111", contact_phone=TO, whisper="Reminder call for Ana Diaz."
        )
    )

    assert result.provider_id.startswith("CA") and result.status == "sent"
    [request] = twilio.api_requests("Calls")
    assert request.path.endswith("/Calls.json")
    assert request.form_value("To") == "+15550001111" and request.form_value("From") == FROM
    assert request.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    root = _twiml(request)
    assert [child.tag for child in root] == ["Say", "Dial", "Say"]
    assert root[0].text == "Reminder call for Ana Diaz."
    assert root[1].get("callerId") == FROM
    assert root[1].find("Number").text == TO


def test_voicemail_drop_inline_plays_after_detection(twilio, voice):
    audio = "https://cdn.example.com/vm/reminder.mp3"

    result = voice.voicemail_drop(OutgoingVoicemail("msg_31", to=TO, audio_url=audio))

    assert result.detail["mode"] == "inline"
    request = twilio.api_requests("Calls")[-1]
    assert request.form_value("MachineDetection") == "DetectMessageEnd"
    root = _twiml(request)
    assert [child.tag for child in root] == ["Play", "Hangup"] and root[0].text == audio


def test_voicemail_drop_with_twiml_url_uses_synchronous_amd(twilio, voice):
    voice.voicemail_drop(
        OutgoingVoicemail(
            "msg_32", to=TO, audio_url="https://a/vm.mp3", twiml_url="https://app.example.com/vm?m=32"
        )
    )
    request = twilio.api_requests("Calls")[-1]
    assert request.form_value("Url") == "https://app.example.com/vm?m=32"
    assert request.form_value("Twiml") is None
    assert request.form_value("MachineDetection") == "DetectMessageEnd"


def test_voicemail_drop_async_amd_then_redirect(twilio, voice, receiver):
    audio = "https://cdn.example.com/vm/reminder.mp3"
    amd_url = receiver.url("/hooks/twilio/amd?m=33")
    sid = voice.voicemail_drop(
        OutgoingVoicemail("msg_33", to=TO, audio_url=audio, amd_callback=amd_url)
    ).provider_id
    request = twilio.api_requests("Calls")[-1]
    assert request.form_value("AsyncAmd") == "true"
    assert request.form_value("AsyncAmdStatusCallback") == amd_url

    twilio.send_amd_callback(sid, "machine_end_beep")
    [amd] = receiver.wait_for_requests(1)
    assert amd.form_value("AnsweredBy") == "machine_end_beep"
    assert verify_signature(twilio.auth_token, _seen_url(amd), amd.form, amd.header("X-Twilio-Signature"))

    voice.play_voicemail(sid, audio)
    update = twilio.requests[-1]
    assert update.path.endswith(f"/Calls/{sid}.json")
    assert ET.fromstring(update.form_value("Twiml"))[0].text == audio
    voice.hang_up(sid)
    assert twilio.requests[-1].form_value("Status") == "completed"
    assert twilio.calls[sid]["status"] == "completed"


def test_voicemail_twiml_per_answered_by():
    audio = "https://a/vm.mp3"
    assert "<Play>https://a/vm.mp3</Play>" in voicemail_twiml("machine_end_silence", audio)
    assert "<Play>" in voicemail_twiml("unknown", audio)
    assert "<Say" in voicemail_twiml("human", audio, human_message="Hi, quick reminder.")
    assert "<Play>" not in voicemail_twiml("fax", audio) and "<Hangup" in voicemail_twiml("fax", audio)


def test_call_status_callback_is_signed(twilio, voice, receiver):
    sid = voice.call(
        OutgoingCall("msg_34", user_phone="+15550001111", contact_phone=TO, whisper="Hi")
    ).provider_id
    twilio.send_status_callback(sid, "ringing")
    twilio.send_status_callback(sid, "completed")
    first, second = receiver.wait_for_requests(2)
    assert (first.form_value("CallStatus"), second.form_value("CallStatus")) == ("ringing", "completed")
    assert int(second.form_value("SequenceNumber")) > int(first.form_value("SequenceNumber"))
    for callback in (first, second):
        assert verify_signature(
            twilio.auth_token, _seen_url(callback), callback.form, callback.header("X-Twilio-Signature")
        )


@pytest.mark.parametrize(
    ("to", "code"), [("+15005550001", "21217"), ("+15005550002", "21214"), ("+15005550003", "21215")]
)
def test_call_errors_are_permanent(voice, to, code):
    with pytest.raises(PermanentProviderError) as caught:
        voice.call(OutgoingCall("msg_35", user_phone=to, contact_phone=TO, whisper="Hi"))
    assert caught.value.provider_code == code


def test_call_rate_limit_is_retryable(twilio, voice):
    twilio.fail_next(1, retry_after=2)
    with pytest.raises(RetryableProviderError) as caught:
        voice.voicemail_drop(OutgoingVoicemail("msg_36", to=TO, audio_url="https://a/vm.mp3"))
    assert caught.value.provider_code == "20429" and caught.value.retry_after == 2.0
