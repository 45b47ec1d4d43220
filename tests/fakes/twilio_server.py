"""A local fake of the Twilio REST API, imitating contract ``EXTERNAL_APIS.md`` §2 and §3.

What it follows (the §2/§3 checklist):

- HTTP Basic auth ``AccountSid:AuthToken`` on every request, else ``401`` / code ``20003``;
- ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form-encoded, ``201`` + message JSON of §2.1, SIDs
  ``SM…``/``MM…``, status ``queued`` or ``accepted`` with a Messaging Service) with the magic test numbers
  of §2.4 (From ``+15005550001/7/8``, To ``+15005550001/2/3/4/9``) and ``GET …/Messages/{sid}.json``;
- ``POST …/Calls.json`` (§3.1) with the analogous voice test numbers, and ``POST …/Calls/{sid}.json``
  (redirect/hang up a live call, §3.3);
- errors in the §2.2 JSON shape ``{code, message, more_info, status}``;
- :meth:`FakeTwilio.fail_next` answers the next N requests with 429/20429 or a 5xx (optional Retry-After);
- every request is recorded (``fake.requests``; form fields keep repeats, e.g. ``MediaUrl``);
- :meth:`FakeTwilio.send_status_callback` POSTs a status callback (§2.5 for messages, §3.4 for calls) to
  the StatusCallback URL given at create time, signed like Twilio (§2.7, ``X-Twilio-Signature`` computed
  with ``twilio.request_validator.RequestValidator``). ``via=`` delivers it through a pretend proxy: the
  signature covers the public URL while the request goes to a local server with ``X-Forwarded-*`` headers.

Unlike real *test* credentials (§2.4) the fake accepts ``MessagingServiceSid`` and does send callbacks
(when asked): it stands in for live credentials with the test numbers' failure behaviour.

    with FakeTwilio() as twilio:
        sender = TwilioSmsSender(twilio.account_sid, twilio.auth_token, base_url=twilio.base_url, ...)
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from tests.fakes.http_base import FakeHttpServer, RecordedRequest, Reply

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test_auth_token_0000000000000000"
API_VERSION = "2010-04-01"

# §2.4 magic numbers: (code, HTTP status, message)
MAGIC_FROM = {
    "+15005550001": (
        21212,
        "The 'From' number +15005550001 is not a valid phone number, shortcode, or alphanumeric sender ID.",
    ),
    "+15005550007": (
        21606,
        "The 'From' phone number provided is not a valid, SMS-capable inbound phone number.",
    ),
    "+15005550008": (21611, "This 'From' number has exceeded the maximum number of queued messages."),
}
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.",
    ),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
# Voice equivalents (§3.1 error list; the numbers mirror Twilio's voice test credentials).
MAGIC_CALL_FROM = {"+15005550001": (21212, "Invalid Caller Phone Number")}
MAGIC_CALL_TO = {
    "+15005550001": (21217, "Phone number does not appear to be valid"),
    "+15005550002": (21214, "'To' phone number cannot be reached"),
    "+15005550003": (21215, "Geo Permission configuration is not permitting call"),
}
_E164 = re.compile(r"^(?:[a-z]+:)?\+[1-9]\d{1,14}$")
_ROUTE = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/(?P<kind>Messages|Calls)(?:/(?P<sid>[^/.]+))?\.json$"
)


@dataclass
class CallbackDelivery:
    """What :meth:`FakeTwilio.send_status_callback` sent and what the app answered."""

    url: str  # the URL that was signed (the StatusCallback as configured)
    target: str  # where the POST actually went (differs with ``via``)
    params: dict[str, str]
    signature: str
    status_code: int


def _now() -> str:
    return format_datetime(datetime.now(UTC))  # RFC 2822, "+0000" (§0)


def _error(status: int, code: int, message: str, **headers: str) -> Reply:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return Reply.json(status, body, headers)


class FakeTwilio(FakeHttpServer):
    def __init__(self, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.opted_out: set[str] = set()
        self._lock = threading.Lock()
        self._failures: list[Reply] = []
        self._counter = itertools.count(1)
        self._sequence: dict[str, itertools.count] = {}
        #: Seconds every API request takes before it is answered: a deliberately slow provider.
        self.delay = 0.0

    # -- switches ---------------------------------------------------------------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        code: int | None = None,
        message: str | None = None,
        retry_after: str | int | None = None,
    ) -> None:
        """Answer the next ``count`` API requests with an error (default ``429``/``20429``)."""
        code = code if code is not None else (20429 if status == 429 else 20000 + status)
        message = message or ("Too Many Requests" if status == 429 else "Service unavailable")
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        with self._lock:
            self._failures.extend(_error(status, code, message, **headers) for _ in range(count))

    def opt_out(self, number: str) -> None:
        """Behave as if ``number`` replied STOP: later sends to it fail with 21610 (§2.6)."""
        with self._lock:
            self.opted_out.add(number)

    # -- API --------------------------------------------------------------------------------------------

    def api_requests(self, kind: str = "Messages") -> list[RecordedRequest]:
        """Recorded create/update requests for ``Messages`` or ``Calls``."""
        return [r for r in self.requests if f"/{kind}" in r.path]

    def handle(self, request: RecordedRequest) -> Reply:
        if self.delay:
            time.sleep(self.delay)
        if request.auth is None or request.auth != (self.account_sid, self.auth_token):
            return _error(401, 20003, "Authenticate")
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
        route = _ROUTE.match(request.path)
        if route is None or route["account"] != self.account_sid:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        kind, sid = route["kind"], route["sid"]
        store = self.messages if kind == "Messages" else self.calls
        if sid is not None:
            with self._lock:
                resource = store.get(sid)
            if resource is None:
                return _error(404, 20404, f"The requested resource {request.path} was not found")
            if request.method == "GET":
                return Reply.json(200, self._public(resource))
            if request.method == "POST" and kind == "Calls":
                return self._update_call(resource, request)
            return _error(405, 20004, "Method not allowed")
        if request.method != "POST":
            return _error(405, 20004, "Method not allowed")
        if kind == "Messages":
            return self._create_message(request)
        return self._create_call(request)

    @staticmethod
    def _public(resource: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resource.items() if not k.startswith("_")}

    def _create_message(self, request: RecordedRequest) -> Reply:
        to, sender = request.form_value("To"), request.form_value("From")
        service = request.form_value("MessagingServiceSid")
        body = request.form_value("Body") or ""
        media = request.form.get("MediaUrl", [])
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not sender and not service:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body and not media:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if len(media) > 10:
            return _error(400, 21623, "Number of media files exceeds allowed limit.")
        if sender in MAGIC_FROM:
            return _error(400, *MAGIC_FROM[sender])
        if to in MAGIC_TO:
            return _error(400, *MAGIC_TO[to])
        if not _E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        with self._lock:
            if to in self.opted_out:
                return _error(400, *MAGIC_TO["+15005550004"])
            sid = ("MM" if media else "SM") + f"{next(self._counter):032x}"
            now = _now()
            resource = {
                "account_sid": self.account_sid,
                "api_version": API_VERSION,
                "body": body,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": sender,
                "messaging_service_sid": service,
                "num_media": str(len(media)),
                "num_segments": "0" if service and not sender else str(max(1, -(-len(body) // 153))),
                "price": None,
                "price_unit": "USD",
                "sid": sid,
                "status": "accepted" if service else "queued",
                "subresource_uris": {
                    "media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
                },
                "to": to,
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json",
                "_status_callback": request.form_value("StatusCallback"),
                "_media": media,
            }
            self.messages[sid] = resource
        return Reply.json(201, self._public(resource))

    def _create_call(self, request: RecordedRequest) -> Reply:
        to, sender = request.form_value("To"), request.form_value("From")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not sender:
            return _error(400, 21213, "No 'From' number is specified")
        if not (
            request.form_value("Url") or request.form_value("Twiml") or request.form_value("ApplicationSid")
        ):
            return _error(400, 21205, "Url parameter is required.")
        twiml = request.form_value("Twiml") or ""
        if len(twiml) > 4000:
            # The 4000-char limit is documented (§3.1); the error code for it is not: 11750 is a stand-in.
            return _error(400, 11750, "Twiml exceeds the maximum size of 4000 characters")
        if sender in MAGIC_CALL_FROM:
            return _error(400, *MAGIC_CALL_FROM[sender])
        if to in MAGIC_CALL_TO:
            return _error(400, *MAGIC_CALL_TO[to])
        if not _E164.match(to):
            return _error(400, 21217, "Phone number does not appear to be valid")
        with self._lock:
            sid = "CA" + f"{next(self._counter):032x}"
            now = _now()
            resource = {
                "sid": sid,
                "account_sid": self.account_sid,
                "to": to,
                "to_formatted": to,
                "from": sender,
                "from_formatted": sender,
                "status": "queued",
                "direction": "outbound-api",
                "answered_by": None,
                "start_time": None,
                "end_time": None,
                "duration": None,
                "price": None,
                "price_unit": "USD",
                "parent_call_sid": None,
                "phone_number_sid": None,
                "api_version": API_VERSION,
                "date_created": now,
                "date_updated": now,
                "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{sid}.json",
                "_status_callback": request.form_value("StatusCallback"),
                "_amd_callback": request.form_value("AsyncAmdStatusCallback"),
                "_form": request.form,
            }
            self.calls[sid] = resource
        return Reply.json(201, self._public(resource))

    def _update_call(self, resource: dict[str, Any], request: RecordedRequest) -> Reply:
        with self._lock:
            if request.form_value("Status") in ("completed", "canceled"):
                resource["status"] = request.form_value("Status")
            for field in ("Twiml", "Url"):
                if request.form_value(field):
                    resource[f"_{field.lower()}"] = request.form_value(field)
            resource["date_updated"] = _now()
        return Reply.json(200, self._public(resource))

    # -- webhooks to the app ----------------------------------------------------------------------------

    def send_status_callback(
        self,
        sid: str,
        status: str,
        *,
        error_code: int | str | None = None,
        extra: dict[str, str] | None = None,
        via: str | None = None,
        timeout: float = 5.0,
    ) -> CallbackDelivery:
        """POST a signed status callback for message or call ``sid`` to its StatusCallback URL.

        ``via`` (e.g. a local receiver's base URL) plays a TLS-terminating proxy: the request goes there with
        the same path and query, plus ``X-Forwarded-Proto``/``X-Forwarded-Host`` of the public URL.
        """
        with self._lock:
            message, call = self.messages.get(sid), self.calls.get(sid)
            resource = message or call
            if resource is None:
                raise KeyError(f"unknown SID {sid}")
            url = resource["_status_callback"]
            if not url:
                raise ValueError(f"{sid} was created without a StatusCallback")
            resource["status"] = status
            if message is not None:
                params = {
                    "MessageSid": sid,
                    "MessageStatus": status,
                    "SmsSid": sid,
                    "SmsStatus": status,
                    "AccountSid": self.account_sid,
                    "To": resource["to"],
                    "ApiVersion": API_VERSION,
                }
                if resource["from"]:
                    params["From"] = resource["from"]
                if resource["messaging_service_sid"]:
                    params["MessagingServiceSid"] = resource["messaging_service_sid"]
            else:
                sequence = self._sequence.setdefault(sid, itertools.count(0))
                params = {
                    "CallSid": sid,
                    "CallStatus": status,
                    "AccountSid": self.account_sid,
                    "From": resource["from"],
                    "To": resource["to"],
                    "Direction": "outbound-api",
                    "ApiVersion": API_VERSION,
                    "CallbackSource": "call-progress-events",
                    "SequenceNumber": str(next(sequence)),
                    "Timestamp": _now(),
                }
                if status == "completed":
                    params["CallDuration"] = "12"
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
            params.update(extra or {})
        return self._post_signed(url, params, via=via, timeout=timeout)

    def send_amd_callback(self, call_sid: str, answered_by: str, *, timeout: float = 5.0) -> CallbackDelivery:
        """POST the async AMD result (§3.3) to the call's AsyncAmdStatusCallback, signed."""
        with self._lock:
            resource = self.calls[call_sid]
            resource["answered_by"] = answered_by
            url = resource["_amd_callback"]
        if not url:
            raise ValueError(f"{call_sid} was created without AsyncAmdStatusCallback")
        params = {
            "CallSid": call_sid,
            "AccountSid": self.account_sid,
            "AnsweredBy": answered_by,
            "MachineDetectionDuration": "2150",
        }
        return self._post_signed(url, params, via=None, timeout=timeout)

    def _post_signed(
        self, url: str, params: dict[str, str], *, via: str | None, timeout: float
    ) -> CallbackDelivery:
        signature = RequestValidator(self.auth_token).compute_signature(url, params)
        headers = {
            "X-Twilio-Signature": signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        target = url
        if via is not None:
            public = urllib.parse.urlsplit(url)
            target = via.rstrip("/") + public.path + (f"?{public.query}" if public.query else "")
            headers["X-Forwarded-Proto"] = public.scheme
            headers["X-Forwarded-Host"] = public.netloc
        response = httpx.post(target, data=params, headers=headers, timeout=timeout)
        return CallbackDelivery(url, target, params, signature, response.status_code)
