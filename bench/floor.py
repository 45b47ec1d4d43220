"""The provider floor: the SMTP and Twilio sends of a wave with no engine and no database, timed.

Also the local outside world ``bench/wave.py --providers real`` sends to:

- an SMTP sink: ``aiosmtpd`` on 127.0.0.1 whose handler records each message's ``Message-ID`` header,
  its arrival instant and the client connection it came on;
- the Twilio fake of the test suite (``tests.fakes.twilio_server.FakeTwilio``), which records every
  message it creates (To, Body, StatusCallback).

The floor itself (:func:`run_floor`) uses the real senders, built by ``automations.wiring`` from the same
settings the workers get: ``SmtpEmailSender.send_batch`` (one SMTP connection per batch) in the batch
sizes the engine used, and ``TwilioSmsSender.send`` one message at a time, in the order the engine used
(each delivery batch: its emails, then its texts). The envelopes are built before the clock starts (copies of
one the engine rendered, with floor ids), so ``floor_drain_s`` is the provider calls and nothing else.
Each repeat also runs the same sends in two lanes, as the engine's delivery does (each batch's emails on a
second thread while its texts go): ``floor_two_lanes_s``, the floor for an engine that overlaps its lanes.
It runs in a process of its own, as the engine's worker does, so the client never shares a GIL with the
sink and the fake.

Standalone (starts its own sink and fake)::

    .venv/bin/python bench/floor.py --emails 2000 --sms 2000 --email-batch 250
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import multiprocessing as mp
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402

from automations.settings import Settings  # noqa: E402
from bench.common import GcTimer, setup_logging  # noqa: E402
from providers.base import OutgoingEmail, OutgoingSms, SendResult  # noqa: E402
from tests.fakes.twilio_server import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio  # noqa: E402

log = logging.getLogger("bench.floor")

#: §2.4 of the contract: the From number that passes validation (the fake rejects +15005550001/7/8).
TWILIO_FROM = "+15005550006"
PUBLIC_URL = "https://punctual.bench.invalid"
FLOOR_PREFIX = "floor"  # floor message ids: floor{run}-e{i} and floor{run}-s{i}
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
_OUTBOX_ID = re.compile(r"^<punctual\.(.+)@[^@>]+>$")


# -- the outside world ----------------------------------------------------------------------------


class SinkHandler:
    """aiosmtpd handler: accept everything, note (Message-ID, arrival instant, connection number) per
    message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[str | None, float, int]] = []
        self._connections = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd's hook name)
        head = envelope.content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        message_id = found.group(1).decode("ascii", "replace") if found else None
        # aiosmtpd makes one Session per connection (the client's port may be reused by the next one).
        connection = getattr(session, "bench_connection", None)
        if connection is None:
            connection = session.bench_connection = next(self._connections)
        with self.lock:
            self.received.append((message_id, time.time(), connection))
        return "250 2.0.0 OK"

    def snapshot(self) -> list[tuple[str | None, float, int]]:
        with self.lock:
            return list(self.received)


def outbox_id(message_id_header: str | None) -> str | None:
    """The outbox id in a ``<punctual.{id}@domain>`` Message-ID (``SmtpEmailSender``'s form), else None."""
    found = _OUTBOX_ID.match(message_id_header or "")
    return found.group(1) if found else None


def callback_outbox_id(status_callback: str | None) -> str | None:
    """The outbox id in a status-callback URL (``…/hooks/twilio/status?m=<id>``), else None."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(status_callback or "").query)
    return (query.get("m") or [None])[0]


def _free_port() -> int:
    # port=0 does not work with aiosmtpd 1.4 (contract §7.3): pick a free port first.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BenchTwilio(FakeTwilio):
    """The test suite's Twilio fake with Nagle's algorithm off on its connections.

    Its ``BaseHTTPRequestHandler`` writes a response in two ``send`` calls (headers, then body): with Nagle
    on, the body waits for the client's delayed ACK of the headers, ~40 ms per request on Linux loopback,
    which would make every SMS cost 44 ms for reasons that have nothing to do with Twilio or the engine
    (``--nagle-fake`` keeps it, to see that)."""

    def __init__(self, *, nagle: bool = False) -> None:
        super().__init__()
        self.nagle = nagle

    def start(self) -> BenchTwilio:
        super().start()
        assert self._server is not None
        self._server.RequestHandlerClass.disable_nagle_algorithm = not self.nagle
        return self


@dataclass
class OutsideWorld:
    sink: SinkHandler
    smtp_port: int
    twilio: BenchTwilio
    settings: dict[str, Any] = field(default_factory=dict)

    def sms_received(self) -> list[dict[str, Any]]:
        """Messages the fake created (a copy: To, Body, StatusCallback)."""
        with self.twilio._lock:
            return [dict(m) for m in self.twilio.messages.values()]


def quiet_provider_logs() -> None:
    """The twilio client logs every request and response at INFO (11 lines each); aiosmtpd every
    connection. The benchmarks log at INFO: keep both at WARNING in every process that sends or serves."""
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)


@contextmanager
def outside_world(*, nagle_fake: bool = False) -> Iterator[OutsideWorld]:
    """Start the SMTP sink and the Twilio fake; yield them with the ``Settings`` fields that point the
    real senders at them."""
    quiet_provider_logs()
    sink = SinkHandler()
    port = _free_port()
    # A fixed server name: aiosmtpd otherwise calls socket.getfqdn() for every connection.
    controller = Controller(sink, hostname="127.0.0.1", port=port, server_hostname="sink.bench.invalid")
    controller.start()
    twilio = BenchTwilio(nagle=nagle_fake).start()
    try:
        settings = {
            "smtp_url": f"smtp://127.0.0.1:{port}",
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": TWILIO_FROM,
            "twilio_base_url": twilio.base_url,
            "public_url": PUBLIC_URL,
        }
        log.info("SMTP sink on 127.0.0.1:%d, Twilio fake at %s", port, twilio.base_url)
        yield OutsideWorld(sink, port, twilio, settings)
    finally:
        twilio.stop()
        controller.stop()


# -- the floor ------------------------------------------------------------------------------------

#: What a wave's envelopes look like when no engine sample is given (standalone runs).
SAMPLE_EMAIL = OutgoingEmail(
    message_id="sample",
    to="contact1@example.com",
    subject="Reminder: Bench visit #1",
    text="Hi Contact1,\n\nYour appointment with Alice Admin is at Saturday, November 21, 2026 at 3:10 AM "
    "EST.\nJoin: https://meet.example.com/alice\n",
    from_email="clinic@example.com",
    from_name="Bench Clinic",
    headers={"List-Unsubscribe": f"<{PUBLIC_URL}/unsubscribe/{'x' * 96}>"},
)
SAMPLE_SMS = OutgoingSms(
    message_id="sample",
    to="+12125550001",
    body="Hi Contact1, see you at 3:10 AM (Bench visit #1): https://meet.example.com/alice",
    status_callback=f"{PUBLIC_URL}/hooks/twilio/status?m=sample",
)


def floor_envelopes(
    plan: list[tuple[int, int]], email: OutgoingEmail, sms: OutgoingSms, prefix: str = f"{FLOOR_PREFIX}0-"
) -> list[tuple[list[OutgoingEmail], list[OutgoingSms]]]:
    """Per delivery batch of ``plan`` ((emails, texts) each): copies of the samples with floor ids."""
    out = []
    e = s = 0
    base_callback = (sms.status_callback or f"{PUBLIC_URL}/hooks/twilio/status?m=x").split("?", 1)[0]
    for emails, texts in plan:
        batch_emails = [dataclasses.replace(email, message_id=f"{prefix}e{e + i}") for i in range(emails)]
        batch_sms = [
            dataclasses.replace(
                sms,
                message_id=f"{prefix}s{s + i}",
                status_callback=f"{base_callback}?m={prefix}s{s + i}",
            )
            for i in range(texts)
        ]
        e, s = e + emails, s + texts
        out.append((batch_emails, batch_sms))
    return out


def run_floor(
    settings: dict[str, Any],
    plan: list[tuple[int, int]],
    email: OutgoingEmail = SAMPLE_EMAIL,
    sms: OutgoingSms = SAMPLE_SMS,
    prefix: str = f"{FLOOR_PREFIX}0-",
    *,
    two_lanes: bool = False,
) -> dict[str, Any]:
    """Send ``plan`` through the real senders (built by ``automations.wiring`` from ``settings``, fresh
    ones: new connections), timed. Message ids start with ``prefix``. ``two_lanes``: each batch's emails
    on a second thread while its texts go from this one (as the engine's delivery lanes send them)."""
    from automations.wiring import email_sender, sms_sender

    config = Settings(**settings)
    emailer, texter = email_sender(config), sms_sender(config)
    if getattr(emailer, "name", None) != "smtp" or getattr(texter, "name", None) != "twilio":
        raise SystemExit("the floor needs SMTP and Twilio settings (smtp_url, twilio_*)")
    batches = floor_envelopes(plan, email, sms, prefix)
    gc_timer = GcTimer()
    tally = {"sent_emails": 0, "sent_sms": 0, "errors": 0, "email_s": 0.0, "sms_s": 0.0}

    def send_emails(batch_emails: list[OutgoingEmail]) -> None:
        t0 = time.perf_counter()
        results = emailer.send_batch(batch_emails)
        tally["email_s"] += time.perf_counter() - t0
        ok = sum(isinstance(r, SendResult) for r in results)
        tally["sent_emails"] += ok
        tally["errors"] += len(results) - ok

    def send_texts(batch_sms: list[OutgoingSms]) -> None:
        t0 = time.perf_counter()
        for one in batch_sms:
            try:
                texter.send(one)
                tally["sent_sms"] += 1
            except Exception:  # counted, not fatal: the floor reports what got through
                tally["errors"] += 1
        tally["sms_s"] += time.perf_counter() - t0

    started, cpu0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(max_workers=1) as lane:
        for batch_emails, batch_sms in batches:
            emails_done = lane.submit(send_emails, batch_emails) if two_lanes and batch_emails else None
            if batch_emails and emails_done is None:
                send_emails(batch_emails)
            send_texts(batch_sms)
            if emails_done is not None:
                emails_done.result()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    gc_timer.stop()
    return {
        "prefix": prefix,
        "floor_drain_s": round(elapsed, 3),
        "floor_email_s": round(tally["email_s"], 3),
        "floor_sms_s": round(tally["sms_s"], 3),
        "floor_gc_s": round(gc_timer.total, 3),
        "floor_cpu_s": round(cpu, 3),
        "floor_sent_emails": tally["sent_emails"],
        "floor_sent_sms": tally["sent_sms"],
        "floor_errors": tally["errors"],
        "floor_email_batches": sum(1 for emails, _ in plan if emails),
    }


def _floor_process(settings, plan, email, sms, repeats, out) -> None:
    setup_logging()
    quiet_provider_logs()
    try:
        out.put([run_floor(settings, plan, email, sms, f"{FLOOR_PREFIX}{k}{'L' if lanes else ''}-", two_lanes=lanes)
                 for k in range(repeats) for lanes in (False, True)])
    except BaseException as exc:  # reported to the parent rather than lost with the process
        out.put({"floor_error": f"{type(exc).__name__}: {exc}"})
        raise


def run_floor_process(
    settings: dict[str, Any],
    plan: list[tuple[int, int]],
    email: OutgoingEmail = SAMPLE_EMAIL,
    sms: OutgoingSms = SAMPLE_SMS,
    repeats: int = 1,
    timeout: float = 1800,
) -> list[dict[str, Any]]:
    """:func:`run_floor` ``repeats`` times, one after the other, in a fresh (spawned) process, as the
    engine's workers run, each time in one lane and then in two. One result per run (message ids
    ``floor{k}-…``, and ``floor{k}L-…`` in two lanes)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_floor_process, args=(settings, plan, email, sms, repeats, out), daemon=True)
    proc.start()
    try:
        result = out.get(timeout=timeout)
    finally:
        proc.join(timeout=30)
    if isinstance(result, dict):
        raise SystemExit(f"the floor failed: {result['floor_error']}")
    return result


def best_floor(world: OutsideWorld, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest one-lane run's figures, with what the sink and the fake received from that run
    (``floor_emails``, ``floor_sms``), the fastest two-lane run's time (``floor_two_lanes_s``) and every
    run's time (``floor_runs_s``, ``floor_two_lanes_runs_s``) when there were several."""
    one = [r for r in runs if not r["prefix"].endswith("L-")]
    two = [r for r in runs if r["prefix"].endswith("L-")]
    best = dict(min(one, key=lambda r: r["floor_drain_s"]))
    best["floor_emails"], best["floor_sms"] = received_counts(world, best.pop("prefix"))
    if two:
        best["floor_two_lanes_s"] = min(r["floor_drain_s"] for r in two)
    if len(one) > 1:
        best["floor_runs_s"] = [r["floor_drain_s"] for r in one]
        best["floor_two_lanes_runs_s"] = [r["floor_drain_s"] for r in two]
    return best


def received_counts(world: OutsideWorld, prefix: str) -> tuple[int, int]:
    """(emails, texts) the sink and the fake received whose outbox id starts with ``prefix``."""
    emails = sum(1 for mid, _, _ in world.sink.snapshot() if (outbox_id(mid) or "").startswith(prefix))
    texts = sum(
        1
        for m in world.sms_received()
        if (callback_outbox_id(m.get("_status_callback")) or "").startswith(prefix)
    )
    return emails, texts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--emails", type=int, default=2000)
    p.add_argument("--sms", type=int, default=2000)
    p.add_argument("--email-batch", type=int, default=250, help="emails per SMTP connection")
    p.add_argument("--nagle-fake", action="store_true", help="leave Nagle on in the Twilio fake")
    p.add_argument("--repeats", type=int, default=1, help="floor runs; the fastest is reported")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    # Delivery batches of the wave's shape: --email-batch emails, then the same share of the texts.
    batches = max(1, -(-max(args.emails, args.sms) // args.email_batch))
    plan = [
        (
            min(args.email_batch, max(0, args.emails - i * args.email_batch)),
            args.sms // batches + (1 if i < args.sms % batches else 0),
        )
        for i in range(batches)
    ]
    with outside_world(nagle_fake=args.nagle_fake) as world:
        result = best_floor(world, run_floor_process(world.settings, plan, repeats=args.repeats))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
