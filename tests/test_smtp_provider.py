"""SmtpEmailSender against a real SMTP server (aiosmtpd, contract §7.3) started in the test.

The handler records every delivered message with its envelope and the client's (host, port), so a test can
count connections; addresses at ``bounce.test`` are refused with 550 and at ``later.test`` with 451.
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
import smtplib
import socket
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from automations.clock import FrozenClock
from automations.errors import PermanentProviderError, RetryableProviderError
from providers.base import OutgoingEmail, SendResult
from providers.smtp import SmtpEmailSender, parse_address, parse_smtp_url

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class RecordingHandler:
    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.peers: set[tuple] = set()  # one entry per SMTP connection that got as far as RCPT
        self.logins: list[bytes] = []
        self.drop_data = 0  # answer the next N DATA commands with 421 (server closing)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.peers.add(session.peer)
        if address.endswith("@bounce.test"):
            return "550 5.1.1 No such user"
        if address.endswith("@later.test"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_data:
            self.drop_data -= 1
            return "421 4.3.2 Service shutting down"
        raw = envelope.original_content or envelope.content
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "peer": session.peer,
                "tls": server.transport.get_extra_info("ssl_object") is not None,
                "raw": raw,  # the DATA as sent (dot-stuffing undone), CRLF line ends
                "msg": email.message_from_bytes(raw, policy=email.policy.default),
            }
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(handler: RecordingHandler, **kw) -> Controller:
    # port=0 does not work with aiosmtpd 1.4 (§7.3): pick a free port first.
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), **kw)
    controller.start()
    return controller


@pytest.fixture
def smtp_server():
    handler = RecordingHandler()
    controller = _start(handler)
    try:
        yield controller, handler
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (and the client context that trusts it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.now(UTC) - timedelta(days=1))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_path, key_path)
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    return server_ctx, client_ctx


def _authenticator(handler: RecordingHandler):
    def authenticate(server, session, envelope, mechanism, auth_data):
        handler.logins.append(auth_data.login)
        ok = auth_data.login == b"mailer" and auth_data.password == b"p@ss:word"
        return AuthResult(success=ok, handled=False)  # handled=False: the server sends the 535 itself

    return authenticate


def _sender(controller: Controller, **kw) -> SmtpEmailSender:
    kw.setdefault("default_from_email", "reminders@clinic.example")
    kw.setdefault("default_from_name", "Clinic Reminders")
    kw.setdefault("clock", FrozenClock(NOW))
    return SmtpEmailSender(f"smtp://{controller.hostname}:{controller.port}", **kw)


def _email(i: int | str = 1, **kw) -> OutgoingEmail:
    kw.setdefault("to", f"ana{i}@example.com")
    kw.setdefault("subject", f"Reminder {i}")
    kw.setdefault("text", f"Hi Ana,\nYour appointment {i} is tomorrow at 10:00.\n")
    return OutgoingEmail(message_id=f"msg_{i}", **kw)


def test_message_is_multipart_with_all_headers_and_bcc_only_in_envelope(smtp_server):
    controller, handler = smtp_server
    unsubscribe = "https://clinic.example/u/tok1, mailto:unsubscribe@clinic.example?subject=unsubscribe-tok1"
    out = _email(
        7,
        html="<p>Hi Ana,</p><p>Your appointment is <b>tomorrow</b>.</p>",
        from_name="Dr. Müller's Clinic",
        reply_to="Front Desk <desk@clinic.example>",
        cc=("Boss <boss@clinic.example>",),
        bcc=("audit@clinic.example",),
        headers={"List-Unsubscribe": unsubscribe, "X-Campaign": "wf_9"},
    )

    [result] = _sender(controller).send_batch([out])

    assert isinstance(result, SendResult)
    assert result.provider == "smtp" and result.status == "sent"
    [got] = handler.messages
    msg = got["msg"]
    assert got["mail_from"] == "reminders@clinic.example"
    assert sorted(got["rcpt_tos"]) == ["ana7@example.com", "audit@clinic.example", "boss@clinic.example"]
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert "appointment 7 is tomorrow" in parts[0].get_content()
    assert "<b>tomorrow</b>" in parts[1].get_content()
    assert msg["From"].addresses[0].display_name == "Dr. Müller's Clinic"
    assert msg["From"].addresses[0].addr_spec == "reminders@clinic.example"
    assert msg["To"] == "ana7@example.com"
    assert msg["Cc"].addresses[0].addr_spec == "boss@clinic.example"
    assert msg["Reply-To"].addresses[0].addr_spec == "desk@clinic.example"
    assert msg["Bcc"] is None
    assert b"audit@clinic.example" not in msg.as_bytes()
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"] == result.provider_id
    assert "msg_7" in msg["Message-ID"] and msg["Message-ID"].endswith("@clinic.example>")
    assert msg["List-Unsubscribe"] == (
        "<https://clinic.example/u/tok1>, <mailto:unsubscribe@clinic.example?subject=unsubscribe-tok1>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Campaign"] == "wf_9"


def test_text_only_email_is_single_part_and_mailto_unsubscribe_has_no_one_click(smtp_server):
    controller, handler = smtp_server
    out = _email(1, headers={"List-Unsubscribe": "<mailto:u@clinic.example>"})

    [result] = _sender(controller).send_batch([out])

    assert isinstance(result, SendResult)
    msg = handler.messages[0]["msg"]
    assert msg.get_content_type() == "text/plain"
    assert msg["List-Unsubscribe"] == "<mailto:u@clinic.example>"
    assert msg["List-Unsubscribe-Post"] is None  # RFC 8058 one-click needs an https URI
    assert msg["From"].addresses[0].display_name == "Clinic Reminders"  # the default name applies


def test_message_id_is_stable_for_the_same_outbox_message(smtp_server):
    controller, handler = smtp_server
    sender = _sender(controller)
    first = sender.send_batch([_email(3)])[0]
    again = sender.send_batch([_email(3)])[0]
    assert first.provider_id == again.provider_id  # a retry is recognisable as the same message


def test_invalid_cc_and_bcc_are_skipped_and_valid_ones_still_go(smtp_server):
    controller, handler = smtp_server
    out = _email(
        2,
        cc=("not an address", "ok-cc@example.com", "two@x.example, three@x.example"),
        bcc=("bad@@example.com", "ok-bcc@example.com"),
        reply_to="nobody",
        headers={"Bcc": "sneaky@example.com", "X-Bad\nName": "v"},
    )

    [result] = _sender(controller).send_batch([out])

    assert isinstance(result, SendResult)
    [got] = handler.messages
    assert sorted(got["rcpt_tos"]) == ["ana2@example.com", "ok-bcc@example.com", "ok-cc@example.com"]
    assert got["msg"]["Cc"] == "ok-cc@example.com"
    assert got["msg"]["Reply-To"] is None
    skipped = {(s["field"], s["value"]) for s in result.detail["skipped"]}
    assert ("cc", "not an address") in skipped
    assert ("cc", "two@x.example, three@x.example") in skipped
    assert ("bcc", "bad@@example.com") in skipped
    assert ("reply_to", "nobody") in skipped
    assert ("header", "Bcc") in skipped  # reserved: a caller cannot smuggle recipients into headers
    assert ("header", "X-Bad\nName") in skipped


@pytest.mark.parametrize(
    "to", ["", "ana", "ana@", "@example.com", "a@b@example.com", "x@example.com\r\nBcc: y@z.com"]
)
def test_invalid_to_is_permanent_and_sends_nothing(smtp_server, to):
    controller, handler = smtp_server

    [result] = _sender(controller).send_batch([_email(1, to=to)])

    assert isinstance(result, PermanentProviderError)
    assert result.provider_code == "invalid_to"
    assert handler.messages == [] and handler.peers == set()


def test_batch_of_five_uses_one_connection(smtp_server):
    controller, handler = smtp_server

    results = _sender(controller).send_batch([_email(i) for i in range(5)])

    assert all(isinstance(r, SendResult) for r in results)
    assert [m["rcpt_tos"] for m in handler.messages] == [[f"ana{i}@example.com"] for i in range(5)]
    assert len({m["peer"] for m in handler.messages}) == 1
    assert len(handler.peers) == 1


def test_refused_recipient_fails_only_that_email(smtp_server):
    controller, handler = smtp_server
    batch = [
        _email(1),
        _email(2, to="gone@bounce.test"),
        _email(3),
        _email(4, to="busy@later.test"),
        _email(5),
    ]

    results = _sender(controller).send_batch(batch)

    assert isinstance(results[0], SendResult)
    assert isinstance(results[1], PermanentProviderError) and results[1].provider_code == "550"
    assert isinstance(results[1].__cause__, smtplib.SMTPRecipientsRefused)
    assert isinstance(results[2], SendResult)
    assert isinstance(results[3], RetryableProviderError) and results[3].provider_code == "451"
    assert isinstance(results[4], SendResult)
    assert [m["rcpt_tos"][0] for m in handler.messages] == [
        "ana1@example.com",
        "ana3@example.com",
        "ana5@example.com",
    ]
    assert len(handler.peers) == 1  # refusals do not cost a reconnect


def test_refused_cc_is_recorded_but_the_email_counts_as_sent(smtp_server):
    controller, handler = smtp_server

    [result] = _sender(controller).send_batch([_email(1, cc=("x@bounce.test", "ok@example.com"))])

    assert isinstance(result, SendResult)
    assert result.detail["refused"]["x@bounce.test"][0] == 550
    assert sorted(handler.messages[0]["rcpt_tos"]) == ["ana1@example.com", "ok@example.com"]


def test_refused_to_with_accepted_cc_is_an_error_for_the_email(smtp_server):
    controller, handler = smtp_server

    [result] = _sender(controller).send_batch([_email(1, to="ana@bounce.test", cc=("ok@example.com",))])

    assert isinstance(result, PermanentProviderError) and result.provider_code == "550"


def test_dropped_connection_reconnects_once_and_resends(smtp_server):
    controller, handler = smtp_server
    original = handler.handle_DATA
    data_commands = 0

    async def drop_second(server, session, envelope):
        nonlocal data_commands
        data_commands += 1
        if data_commands == 2:  # the server closes on the second message of the batch
            return "421 4.3.2 Service shutting down"
        return await original(server, session, envelope)

    handler.handle_DATA = drop_second
    results = _sender(controller).send_batch([_email(1), _email(2), _email(3)])

    assert all(isinstance(r, SendResult) for r in results), results
    assert [m["rcpt_tos"][0] for m in handler.messages] == [f"ana{i}@example.com" for i in (1, 2, 3)]
    peers = [m["peer"] for m in handler.messages]
    assert peers[1] == peers[2] != peers[0]  # exactly one reconnect, then the new connection is reused


def test_second_drop_in_a_batch_gives_up_with_retryable_errors(smtp_server):
    controller, handler = smtp_server
    handler.drop_data = 2

    results = _sender(controller).send_batch([_email(1), _email(2), _email(3, to="bad")])

    assert isinstance(results[0], RetryableProviderError) and results[0].provider_code == "421"
    assert isinstance(results[0].__cause__, smtplib.SMTPDataError)
    assert isinstance(results[1], RetryableProviderError)
    assert results[1].message.startswith("not attempted")
    assert isinstance(results[2], PermanentProviderError)  # invalid To is still reported as such
    assert handler.messages == []


def test_connection_refused_is_retryable():
    port = _free_port()  # nothing listens there any more
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", default_from_email="r@clinic.example")

    results = sender.send_batch([_email(1), _email(2)])

    assert all(isinstance(r, RetryableProviderError) for r in results)
    assert results[0].provider_code == "connection"
    assert isinstance(results[0].__cause__, ConnectionRefusedError)


def test_silent_server_times_out_as_retryable():
    # Accepts TCP connections (backlog) but never sends the SMTP greeting.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        sender = SmtpEmailSender(
            f"smtp://127.0.0.1:{port}?timeout=0.3", default_from_email="r@clinic.example"
        )

        [result] = sender.send_batch([_email(1)])

    assert isinstance(result, RetryableProviderError)
    assert result.provider_code == "timeout"


def test_starttls_and_login(tls_files):
    server_ctx, client_ctx = tls_files
    handler = RecordingHandler()
    controller = _start(
        handler, tls_context=server_ctx, require_starttls=True, authenticator=_authenticator(handler)
    )
    try:
        url = f"smtp+starttls://mailer:p%40ss%3Aword@127.0.0.1:{controller.port}"
        sender = SmtpEmailSender(url, default_from_email="r@clinic.example", ssl_context=client_ctx)
        results = sender.send_batch([_email(1), _email(2)])

        bad = SmtpEmailSender(
            url.replace("p%40ss", "wrong"), default_from_email="r@clinic.example", ssl_context=client_ctx
        )
        refused = bad.send_batch([_email(3), _email(4)])
    finally:
        controller.stop()

    assert all(isinstance(r, SendResult) for r in results)
    assert all(m["tls"] for m in handler.messages)
    assert handler.logins[0] == b"mailer"
    # Bad credentials fail the whole batch permanently, without a pointless reconnect.
    assert all(isinstance(r, PermanentProviderError) for r in refused)
    assert refused[0].provider_code == "535"
    assert [m["rcpt_tos"][0] for m in handler.messages] == ["ana1@example.com", "ana2@example.com"]


def test_implicit_tls_smtps(tls_files):
    server_ctx, client_ctx = tls_files
    handler = RecordingHandler()
    controller = _start(handler, ssl_context=server_ctx)
    try:
        sender = SmtpEmailSender(
            f"smtps://127.0.0.1:{controller.port}",
            default_from_email="r@clinic.example",
            ssl_context=client_ctx,
        )
        [result] = sender.send_batch([_email(1)])
    finally:
        controller.stop()

    assert isinstance(result, SendResult)
    assert handler.messages[0]["tls"]


def test_untrusted_certificate_is_permanent(tls_files):
    server_ctx, _ = tls_files
    handler = RecordingHandler()
    controller = _start(handler, tls_context=server_ctx)
    try:
        sender = SmtpEmailSender(
            f"smtp://127.0.0.1:{controller.port}?starttls=1", default_from_email="r@c.example"
        )
        results = sender.send_batch([_email(1), _email(2)])
    finally:
        controller.stop()

    assert all(isinstance(r, PermanentProviderError) for r in results)
    assert results[0].provider_code == "tls"


def test_starttls_required_but_not_offered_is_permanent(smtp_server):
    controller, handler = smtp_server
    sender = SmtpEmailSender(
        f"smtp+starttls://127.0.0.1:{controller.port}", default_from_email="r@clinic.example"
    )

    results = sender.send_batch([_email(1), _email(2)])

    assert all(isinstance(r, PermanentProviderError) for r in results)
    assert handler.messages == []


# -- what goes on the wire: encoding, folding, body transfer encodings -------------------------------------


def _header_block(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _raw_header(raw: bytes, name: bytes) -> bytes:
    """One header as it appeared on the wire, continuation lines included (CRLF kept)."""
    lines = _header_block(raw)
    start = next(i for i, line in enumerate(lines) if line.lower().startswith(name.lower() + b":"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return b"\r\n".join(lines[start:end])


def _assert_clean_wire(raw: bytes) -> None:
    """7-bit, CRLF only, no line over 998 octets, header lines within 78 unless one word is longer."""
    assert raw.isascii(), "raw 8-bit data on the wire"
    assert b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    for line in _header_block(raw):
        assert len(line) <= 78 or max(len(word) for word in line.split()) > 60, line
    for word in re.findall(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=", raw.split(b"\r\n\r\n", 1)[0]):
        assert len(word) <= 75, word  # RFC 2047 §2


def test_non_ascii_subject_names_header_and_bodies_round_trip(smtp_server):
    controller, handler = smtp_server
    subject = "Erinnerung: Termin bei Dr. Müller – morgen um 10:00 Uhr, bitte bestätigen Sie 😀 rechtzeitig"
    from_name = "Praxis Dr. Müller & Söhne, Zahnärzte für die ganze Familie in München"
    text = "Grüße, Zoë!\nIhr Termin ist morgen.\n\n— Ihre Praxis\n"
    html = "<p>Grüße, <b>Zoë</b>!</p>\n<p>Здравствуйте</p>\n"
    out = _email(
        1,
        to="Zoë Åström <zoe@example.com>",
        subject=subject + "\n",  # a newline from a merge field is collapsed, as before
        text=text,
        html=html,
        from_name=from_name,
        cc=("Jürgen Groß <j@example.com>",),
        reply_to="Empfang Ärztehaus <desk@clinic.example>",
        headers={"X-Note": "café ☕ " * 12 + "fin"},
    )

    [result] = _sender(controller).send_batch([out])

    assert isinstance(result, SendResult), result
    [got] = handler.messages
    msg, raw = got["msg"], got["raw"]
    _assert_clean_wire(raw)
    assert b"=?utf-8?" in _raw_header(raw, b"Subject")  # RFC 2047, utf-8
    for line in _raw_header(raw, b"Subject").split(b"\r\n"):
        assert len(line) <= 76  # RFC 2047 §2: lines holding encoded words
    assert msg["Subject"] == subject
    assert msg["From"].addresses[0].display_name == from_name
    assert msg["From"].addresses[0].addr_spec == "reminders@clinic.example"
    assert (msg["To"].addresses[0].display_name, msg["To"].addresses[0].addr_spec) == ("Zoë Åström", "zoe@example.com")
    assert msg["Cc"].addresses[0].display_name == "Jürgen Groß"
    assert msg["Reply-To"].addresses[0].display_name == "Empfang Ärztehaus"
    assert msg["X-Note"] == "café ☕ " * 12 + "fin"
    assert msg.get_content_type() == "multipart/alternative"
    plain, rich = msg.iter_parts()
    assert [plain.get_content_type(), rich.get_content_type()] == ["text/plain", "text/html"]
    assert [plain.get_content_charset(), rich.get_content_charset()] == ["utf-8", "utf-8"]
    assert plain["Content-Transfer-Encoding"] == rich["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content().replace("\r\n", "\n") == text
    assert rich.get_content().replace("\r\n", "\n") == html


def test_ascii_display_name_with_specials_round_trips(smtp_server):
    controller, handler = smtp_server
    name = 'Dr. "Bob" O\'Neil, MD (Clinic)'

    _sender(controller).send_batch([_email(1, from_name=name)])

    msg = handler.messages[0]["msg"]
    assert msg["From"].addresses[0].display_name == name
    assert len(msg["From"].addresses) == 1


def test_long_body_lines_arrive_intact_within_998_octet_wire_lines(smtp_server):
    controller, handler = smtp_server
    text = "Start\n" + "a" * 1500 + "\n" + "ü" * 700 + "\nFrom here on, a line that mbox would mangle\n.\n..dots\nEnd\n"
    html = "<p>" + "b" * 1200 + "</p>\n"

    [result] = _sender(controller).send_batch([_email(1, text=text, html=html)])

    assert isinstance(result, SendResult), result  # aiosmtpd answers 500 to a line over 1000 octets
    [got] = handler.messages
    _assert_clean_wire(got["raw"])
    plain, rich = got["msg"].iter_parts()
    assert plain["Content-Transfer-Encoding"] == rich["Content-Transfer-Encoding"] == "quoted-printable"
    assert plain.get_content().replace("\r\n", "\n") == text
    assert rich.get_content().replace("\r\n", "\n") == html


@pytest.mark.parametrize(
    ("text", "encodings"),
    [
        ("Hi Ana,\nSee you tomorrow at 10:00.\n", {"7bit", "quoted-printable"}),
        ("Hi Ana, " * 40 + "\n", {"7bit", "quoted-printable"}),  # one 320-character line
        ("Здравствуйте! " * 30 + "\n", {"quoted-printable"}),  # set_content() picked base64 for this
        ("Grüße\nbis morgen\n", {"quoted-printable"}),  # and raw 8bit for this
    ],
)
def test_text_bodies_are_7bit_or_quoted_printable_never_base64_or_8bit(smtp_server, text, encodings):
    controller, handler = smtp_server

    _sender(controller).send_batch([_email(1, text=text)])

    [got] = handler.messages
    msg = got["msg"]
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg["Content-Transfer-Encoding"] in encodings
    assert msg.get_content().replace("\r\n", "\n") == text
    _assert_clean_wire(got["raw"])


def test_long_headers_fold_and_list_unsubscribe_stays_literal(smtp_server):
    controller, handler = smtp_server
    subject = " ".join(f"word{i}" for i in range(60))  # about 400 characters of ASCII
    unsubscribe = "https://clinic.example/unsubscribe/" + "x" * 120
    cc = tuple(f"Person Number {i} <p{i}@example.com>" for i in range(6))

    _sender(controller).send_batch([_email(1, subject=subject, cc=cc, headers={"List-Unsubscribe": unsubscribe})])

    [got] = handler.messages
    msg, raw = got["msg"], got["raw"]
    _assert_clean_wire(raw)
    assert len(_raw_header(raw, b"Subject").split(b"\r\n")) > 1  # folded
    assert msg["Subject"] == subject
    assert [a.addr_spec for a in msg["Cc"].addresses] == [f"p{i}@example.com" for i in range(6)]
    # Receivers read the URI from the raw header: it must not be hidden in encoded words.
    assert _raw_header(raw, b"List-Unsubscribe") == b"List-Unsubscribe: <" + unsubscribe.encode() + b">"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_custom_header_line_separators_are_rejected_and_reserved_ones_skipped(smtp_server):
    controller, handler = smtp_server
    headers = {
        "X-Ok": "fine value",
        "X-Sep": "a\u2028b",  # str.splitlines() separators other than CR/LF: rejected, as EmailMessage did
        "X-Vt": "a\x0bb",
        "X-Nl": "a\nb",
        "Content-Type": "text/html",
        "Bad Name": "v",
    }

    [result] = _sender(controller).send_batch([_email(1, headers=headers)])

    assert isinstance(result, SendResult)
    reasons = {s["value"]: s["reason"] for s in result.detail["skipped"]}
    assert reasons["X-Sep"].startswith("rejected:") and reasons["X-Vt"].startswith("rejected:")
    assert reasons["X-Nl"] == "invalid header" and reasons["Bad Name"] == "invalid header"
    assert reasons["Content-Type"] == "reserved header"
    msg = handler.messages[0]["msg"]
    assert msg["X-Ok"] == "fine value"
    assert msg["X-Sep"] is None and msg["X-Vt"] is None and msg.get_content_type() == "text/plain"


def test_display_name_with_a_newline_is_refused_like_before():
    sender = SmtpEmailSender("smtp://127.0.0.1:1", default_from_email="r@clinic.example")
    for name in ("Clinic\nBcc: x@evil.example", "Klinik Zoë\r\nBcc: x@evil.example"):
        with pytest.raises(ValueError):
            sender.build(_email(1, from_name=name))


def test_non_ascii_bcc_goes_with_smtputf8_and_fails_without_it(smtp_server):
    controller, handler = smtp_server  # aiosmtpd's Controller offers SMTPUTF8 by default
    out = _email(1, bcc=("jösé@example.com",), subject="Grüße")

    [result] = _sender(controller).send_batch([out])

    assert isinstance(result, SendResult), result
    [got] = handler.messages
    assert sorted(got["rcpt_tos"]) == ["ana1@example.com", "jösé@example.com"]
    assert got["msg"]["Subject"] == "Grüße" and got["msg"]["Bcc"] is None

    plain_handler = RecordingHandler()
    plain_controller = _start(plain_handler, enable_SMTPUTF8=False)
    try:
        [refused] = _sender(plain_controller).send_batch([out])
    finally:
        plain_controller.stop()
    assert isinstance(refused, PermanentProviderError) and refused.provider_code == "ext"
    assert plain_handler.messages == []


def test_parse_smtp_url_variants():
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.security, plain.username) == ("mail.example.com", 25, "plain", None)
    tls = parse_smtp_url("smtp://u%40x:p%2Fw@mail.example.com:2525?starttls=1&timeout=3&helo=app.example")
    assert (tls.port, tls.security, tls.username, tls.password) == (2525, "starttls", "u@x", "p/w")
    assert (tls.timeout, tls.helo) == (3.0, "app.example")
    assert parse_smtp_url("smtp+starttls://h").port == 587
    assert parse_smtp_url("smtps://h").security == "ssl" and parse_smtp_url("smtps://h").port == 465
    with pytest.raises(ValueError):
        parse_smtp_url("http://mail.example.com")


def test_parse_address():
    assert parse_address("Ann <ann@example.com>") == ("Ann", "ann@example.com")
    assert parse_address("ann@example.com") == ("", "ann@example.com")
    for bad in ("", "ann", "ann@localhost", "a@b.example, c@d.example", "ann@exa mple.com", "a\n@b.com"):
        assert parse_address(bad) is None, bad
