"""A fake Slack incoming webhook (contract ``EXTERNAL_APIS.md`` §6) and a generic webhook receiver.

:class:`FakeSlack` follows the §6 fake checklist: it accepts JSON only (anything else is ``400
invalid_payload``; a JSON object with neither ``text`` nor ``blocks`` is ``400 no_text``), answers ``200 ok``
as ``text/html``, and has switches for ``404 no_service`` (:meth:`FakeSlack.revoke`), ``410
channel_is_archived`` (:meth:`FakeSlack.archive`), ``429`` with ``Retry-After`` (:meth:`FakeSlack.rate_limit`)
and any other status/body (:meth:`FakeSlack.fail_next`, e.g. ``500 rollup_error``). Unknown hook paths
answer ``404 no_service``, as a revoked webhook does.

:class:`WebhookReceiver` stands in for whatever a user's webhook step (or a Twilio status callback) targets:
it records every request and answers from a queue of canned replies (default ``200 ok``).

    with FakeSlack() as slack, WebhookReceiver() as hook:
        SlackWebhookSender().send(slack.webhook_url, "hi")
        hook.respond(503, "busy", headers={"Retry-After": "7"})
"""

from __future__ import annotations

import json
import threading

from tests.fakes.http_base import FakeHttpServer, RecordedRequest, Reply

HOOK_PATH = "/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


def _slack(status: int, text: str, **headers: str) -> Reply:
    # Slack answers with bare strings served as text/html (§6).
    return Reply.text(status, text, "text/html", **headers)


class FakeSlack(FakeHttpServer):
    def __init__(self) -> None:
        super().__init__()
        self.posted: list[dict] = []  # accepted payloads, in order
        self._lock = threading.Lock()
        self._queued: list[Reply] = []
        self._permanent: Reply | None = None

    @property
    def webhook_url(self) -> str:
        return self.base_url + HOOK_PATH

    def fail_next(
        self, count: int = 1, *, status: int = 500, body: str = "rollup_error", **headers: str
    ) -> None:
        """Answer the next ``count`` posts with ``status``/``body`` (extra kwargs become headers)."""
        with self._lock:
            self._queued.extend(_slack(status, body, **headers) for _ in range(count))

    def rate_limit(self, count: int = 1, retry_after: int = 1) -> None:
        """The next ``count`` posts get ``429`` with ``Retry-After`` (body not guaranteed by Slack: empty)."""
        with self._lock:
            self._queued.extend(_slack(429, "", **{"Retry-After": str(retry_after)}) for _ in range(count))

    def revoke(self) -> None:
        """The webhook was removed: every later post gets ``404 no_service``."""
        self._permanent = _slack(404, "no_service")

    def archive(self) -> None:
        """The channel was archived: every later post gets ``410 channel_is_archived``."""
        self._permanent = _slack(410, "channel_is_archived")

    def handle(self, request: RecordedRequest) -> Reply:
        if request.method != "POST":
            return _slack(405, "invalid_method")
        if request.path != HOOK_PATH:
            return _slack(404, "no_service")
        with self._lock:
            if self._queued:
                return self._queued.pop(0)
        if self._permanent is not None:
            return self._permanent
        if not (request.header("Content-Type") or "").lower().startswith("application/json"):
            return _slack(400, "invalid_payload")
        try:
            payload = json.loads(request.body)
        except ValueError:
            return _slack(400, "invalid_payload")
        if not isinstance(payload, dict):
            return _slack(400, "invalid_payload")
        if not payload.get("text") and not payload.get("blocks"):
            return _slack(400, "no_text")
        with self._lock:
            self.posted.append(payload)
        return _slack(200, "ok")


class WebhookReceiver(FakeHttpServer):
    """Records every request; answers with queued replies, then ``200 ok``."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._queued: list[Reply] = []

    def url(self, path: str = "/hook") -> str:
        return self.base_url + path

    def respond(
        self, status: int, body: str | bytes = b"", *, headers: dict[str, str] | None = None, times: int = 1
    ) -> None:
        """Queue ``times`` replies of ``status`` with ``body`` and ``headers``."""
        data = body.encode() if isinstance(body, str) else body
        reply_headers = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
        with self._lock:
            self._queued.extend(Reply(status, data, reply_headers) for _ in range(times))

    def handle(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._queued:
                return self._queued.pop(0)
        return Reply.text(200, "ok")
