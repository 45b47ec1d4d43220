"""SMTP delivery: the real ``EmailSender`` (contract ``EXTERNAL_APIS.md`` §7).

Configured from one URL:

- ``smtp://user:pass@host:port`` — plain (port 25 by default); add ``?starttls=1`` to upgrade with STARTTLS;
- ``smtp+starttls://…`` — STARTTLS (port 587 by default); ``smtps://…`` — implicit TLS (port 465);
- optional query parameters ``timeout=<seconds>`` and ``helo=<name>`` (the EHLO name; smtplib's default
  calls ``socket.getfqdn()``, which is slow or wrong in containers).

A batch uses ONE connection. Per-email problems (refused recipient, rejected data) fail only that email;
connection problems (drops, timeouts, 421) reconnect once per batch and retry that email, then give up on
the rest as retryable. Replies 4xx are retryable, 5xx permanent (§7.2); smtplib exceptions are translated
with ``raise … from``.

Message-ID is derived from our outbox id (``<punctual.{message_id}@{domain}>``): a retry after an
ambiguous failure (connection lost after DATA) carries the same Message-ID, so receivers that dedupe by it
drop the copy, and the id in any mailbox traces back to the outbox row.

The MIME message is built with the compat32 API (``email.message.Message``, ``email.charset``), not
``EmailMessage``: the modern policy parses every header we set into a header object and re-folds it from
the parse tree when flattening, about 2 ms of CPU per email (build + flatten; now about 0.15 ms). Here ``build()`` writes each header once, already RFC 2047-encoded (utf-8) where it is not ASCII
and folded at spaces to 78 characters where its words allow (never beyond 998), and ``_WIRE`` writes such
values as they are. Bodies are utf-8 text: 7bit when ASCII with lines of at most 998 octets, otherwise
quoted-printable (never base64, never raw 8bit). The rare header our own encoding does not cover — a
structured one a caller supplies (``Resent-*``, ``Orig-Date``, ``Content-Disposition``) or a value holding
surrogates — still goes through ``email.policy.default`` exactly as before, with the same errors. The message
is flattened once (CRLF) and sent with ``sendmail``; ``_send`` keeps what ``send_message`` did around it
(SMTPUTF8 for non-ASCII envelope addresses, one ``Resent-`` block).
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
import smtplib
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import charset as _charset
from email.generator import BytesGenerator
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.policy import Compat32
from email.policy import default as _DEFAULT
from email.utils import format_datetime, formataddr, getaddresses

from automations.clock import Clock, SystemClock
from automations.errors import PermanentProviderError, ProviderError, RetryableProviderError
from providers.base import OutgoingEmail, SendResult

DEFAULT_TIMEOUT = 10.0
_DEFAULT_PORTS = {"plain": 25, "starttls": 587, "ssl": 465}
_SCHEMES = {"smtp": "plain", "smtp+starttls": "starttls", "smtps": "ssl", "smtp+ssl": "ssl"}
_TRUE = {"1", "true", "yes", "on"}

# Headers we compose ourselves: a caller-supplied value would contradict the envelope or the MIME structure.
_RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "sender",
        "return-path",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe-post",  # set by us exactly when List-Unsubscribe has an https URI (RFC 8058)
    }
)
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322 field-name)
_ATOM = r"[\w!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_ADDR_SPEC = re.compile(rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+$")
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]")

# Caller headers that email.policy.default parses as structured (dates, addresses, MIME parameters): they keep
# going through it, so their validation, rejections and wire form stay what they were.
_STRUCTURED_HEADERS = frozenset(HeaderRegistry().registry) - _RESERVED_HEADERS
# Kept out of the wire, as before: set_content() cleared every Content-* header, send_message() Resent-Bcc.
_DROPPED_PREFIX, _DROPPED_HEADERS = "content-", frozenset({"resent-bcc"})
# EmailMessage's check (str.splitlines(), so also \v, \f, \x1c-\x1e, \x85, \u2028, \u2029) and its message.
_NO_LINE_BREAKS = "Header values may not contain linefeed or carriage return characters"
_MAX_LINE = 78  # RFC 5322 §2.1.1: SHOULD; 998 octets MUST
_MAX_OCTETS = 998
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what bytes.splitlines() (and so set_content) treats as a line end
_UTF8 = _charset.Charset("utf-8")
_UTF8.body_encoding = _charset.QP  # bodies: quoted-printable, not the utf-8 default base64
_EW_LINE = 76  # RFC 2047 §2: a line holding encoded words is at most 76 characters
_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")  # a phrase word needing neither quotes nor encoding


class _Folded(str):
    """A header value ``build()`` has encoded (ASCII) and folded ('\\n ' before continuation lines)."""


class _WirePolicy(Compat32):
    """compat32 that writes ``_Folded`` values as they are (anything else, e.g. the multipart Content-Type the
    generator adds a boundary to, is folded the compat32 way)."""

    def _verbatim(self, name: str, value: str) -> str:
        line = f"{name}: {value}" if value and value[0] != "\n" else f"{name}:{value}"
        return line.replace("\n", self.linesep) + self.linesep

    def fold(self, name: str, value: str) -> str:
        return self._verbatim(name, value) if isinstance(value, _Folded) else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        if isinstance(value, _Folded):
            return self._verbatim(name, value).encode("ascii")
        return super().fold_binary(name, value)


# CRLF on the wire; no ">From " mangling (smtplib's send_message() mangled lines starting "From ").
_WIRE = _WirePolicy(linesep="\r\n", mangle_from_=False)
_AUTO_SUBMITTED = _Folded("auto-generated")
_ONE_CLICK = _Folded("List-Unsubscribe=One-Click")
_MIME_VERSION = _Folded("1.0")


def _fold(name: str, value: str) -> _Folded | None:
    """``value`` (ASCII) with a fold before a space wherever the line would pass 78 characters; None if a
    single word makes a line longer than 998 octets. Unfolding gives ``value`` back exactly."""
    if len(name) + 2 + len(value) <= _MAX_LINE:
        return _Folded(value)
    words = value.split(" ")
    out = [words[0]]
    width = len(name) + 2 + len(words[0])
    for word in words[1:]:
        if word and width + 1 + len(word) > _MAX_LINE:  # never before an empty word: no blank lines
            out.append("\n " + word)
            width = 1 + len(word)
        else:
            out.append(" " + word)
            width += 1 + len(word)
        if width > _MAX_OCTETS:
            return None
    return None if len(name) + 2 + len(words[0]) > _MAX_OCTETS else _Folded("".join(out))


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _legacy(name: str, value: str) -> _Folded:
    """The header as ``EmailMessage`` (email.policy.default) stored and folded it — raising as it did."""
    header = _DEFAULT.header_store_parse(name, value)[1]
    folded: str = header.fold(policy=_DEFAULT)  # "Name: value\n", folds as "\n "
    return _Folded(folded.partition(":")[2].removeprefix(" ").removesuffix("\n"))


def _unstructured(name: str, value: str) -> _Folded:
    """An unstructured header: as is if ASCII, else RFC 2047 encoded words (utf-8, at most 75 characters)."""
    if len(value.splitlines()) > 1:
        raise ValueError(_NO_LINE_BREAKS)
    if value.isascii():
        folded = _fold(name, value)
        if folded is not None:
            return folded
        # A word too long for any legal line: encoded words can be split anywhere (as EmailMessage did).
    elif not _encodable(value):
        return _legacy(name, value)
    # An empty first word: the name leaves no room on its line, the words start on the next.
    return _Folded("\n ".join(_encoded_words(value, _EW_LINE - len(name) - 2)))


def _encoded_words(text: str, first: int, rest: int = _EW_LINE - 1) -> list[str]:
    """``text`` as RFC 2047 utf-8 encoded words (q or b, whichever is shorter), split between characters: the
    first at most ``first`` characters long ("" if that is too little), the others ``rest``.
    (Not Header.encode(): it breaks its text at str.splitlines() separators such as \\x85.)"""
    words = _UTF8.header_encode_lines(text, itertools.chain((first,), itertools.repeat(rest)))
    return [word or "" for word in words]


def _phrase(name: str) -> str:
    """A non-ASCII display name as an RFC 5322 phrase: words that are plain atext stay as they are, each run of
    the others (with the spaces inside it) becomes encoded words. Few encoded words end up side by side,
    whose whitespace decoders must drop (Python's own address parser keeps it)."""
    parts: list[str] = []
    run: list[str] = []

    def flush() -> None:
        text = " ".join(run)
        if text.strip(" "):
            # 66: the first word fits after the longest "Reply-To: " (and every word on a line of its own).
            parts.extend(_encoded_words(text, 66, 66))
        run.clear()

    for word in name.split(" "):
        if _ATEXT.fullmatch(word) and "=?" not in word:
            flush()
            parts.append(word)
        else:
            run.append(word)
    flush()
    return " ".join(parts)


def _address(name: str, addr: str) -> str:
    """``name <addr>`` as ``formataddr`` writes it; a non-ASCII name as a phrase with encoded words."""
    if not name or name.isascii():
        return formataddr((name, addr))  # quotes the name where needed; UnicodeEncodeError for a non-ASCII addr
    addr.encode("ascii")  # formataddr's check, kept: an address must be ASCII
    if "\r" in name or "\n" in name:  # EmailMessage's Address() refused these (ASCII ones fail the line check)
        raise ValueError("invalid arguments; address parts cannot contain CR or LF")
    return f"{_phrase(name)} <{addr}>"


def _address_header(name: str, addresses: list[tuple[str, str]]) -> _Folded:
    value = ", ".join(_address(n, a) for n, a in addresses)
    if len(value.splitlines()) > 1:  # e.g. an ASCII display name with a newline: EmailMessage raised this
        raise ValueError(_NO_LINE_BREAKS)
    return _fold(name, value) or _Folded(value)  # an address cannot be split


def _set_text(part: Message, text: str, subtype: str) -> Message:
    """Make ``part`` text/<subtype> in utf-8, lines ending as set_content() ended them (a newline added at
    the end); 7bit if ASCII with no line over 998 octets, else quoted-printable."""
    lines = _LINE_BREAK.split(text)
    if lines[-1] == "":
        lines.pop()
    body = "\n".join(lines) + "\n"
    if body.isascii() and all(len(line) <= _MAX_OCTETS for line in lines):
        cte = _Folded("7bit")
    else:
        cte = _Folded("quoted-printable")
        body = _UTF8.body_encode(body)  # UnicodeEncodeError for lone surrogates, as set_content() raised
    part["Content-Type"] = _Folded(f'text/{subtype}; charset="utf-8"')
    part["Content-Transfer-Encoding"] = cte
    part.set_payload(body)
    return part


def _wire_bytes(message: Message) -> bytes:
    """``message`` as sent: CRLF line ends, headers as ``build()`` wrote them."""
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, policy=_WIRE).flatten(message)
    return out.getvalue()


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # plain | starttls | ssl
    username: str | None = None
    password: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    helo: str | None = None


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URLs (user and password percent-decoded)."""
    parts = urllib.parse.urlsplit(url)
    security = _SCHEMES.get(parts.scheme.lower())
    if security is None:
        raise ValueError(f"SMTP URL scheme must be one of {sorted(_SCHEMES)}, got {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    query = dict(urllib.parse.parse_qsl(parts.query))
    if security == "plain" and query.get("starttls", "").lower() in _TRUE:
        security = "starttls"
    username = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return SmtpConfig(
        host=parts.hostname,
        port=parts.port or _DEFAULT_PORTS[security],
        security=security,
        username=username,
        password=password,
        timeout=float(query.get("timeout", DEFAULT_TIMEOUT)),
        helo=query.get("helo") or None,
    )


def parse_address(value: str | None) -> tuple[str, str] | None:
    """``(display name, addr-spec)`` for one address (``a@b.example`` or ``Ann <a@b.example>``), else None."""
    if not value or any(ch in value for ch in "\r\n\0"):
        return None
    pairs = getaddresses([value])
    if len(pairs) != 1:
        return None
    name, addr = pairs[0]
    # getaddresses() quietly drops whitespace and comments ("a@exa mple.com" -> "a@example.com"):
    # accept only what was literally written.
    if not _ADDR_SPEC.match(addr) or addr not in value:
        return None
    return name, addr


@dataclass
class PreparedEmail:
    """A built message and its envelope; ``skipped`` lists what was left out and why.

    ``message`` is a compat32 ``Message`` whose header values are already encoded and folded;
    ``_wire_bytes(message)`` is what goes out.
    """

    message: Message
    envelope_from: str
    to_addr: str
    recipients: list[str]
    message_id: str
    skipped: list[dict[str, str]] = field(default_factory=list)


def _normalize_unsubscribe(value: str) -> tuple[str | None, bool]:
    """``(List-Unsubscribe value, one_click)`` from a caller's value: bare or bracketed URIs, comma separated.

    Only https and mailto URIs are kept; one-click (RFC 8058) needs an https one.
    """
    uris = []
    for item in value.split(","):
        uri = item.strip().strip("<>").strip()
        scheme = urllib.parse.urlsplit(uri).scheme.lower()
        if scheme in ("https", "http", "mailto") and not any(ch in uri for ch in "\r\n <>"):
            uris.append(uri)
    if not uris:
        return None, False
    one_click = any(urllib.parse.urlsplit(u).scheme.lower() == "https" for u in uris)
    return ", ".join(f"<{u}>" for u in uris), one_click


class _Scope:
    MESSAGE = "message"  # only this email failed; carry on with the connection
    CONNECTION = "connection"  # the connection is gone: reconnect (once per batch)
    FATAL = "fatal"  # nothing in this batch can go through (bad credentials, no STARTTLS)


def _by_code(code: int, text: str, provider_code: str | None = None) -> ProviderError:
    provider_code = provider_code or str(code)
    if 400 <= code < 500:
        return RetryableProviderError(text, provider_code=provider_code)
    return PermanentProviderError(text, provider_code=provider_code)


def _reply_text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


def _translate(
    exc: BaseException, *, connecting: bool, to_addr: str | None = None
) -> tuple[str, ProviderError]:
    """Our error and its scope for anything smtplib (or the socket under it) raised."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _Scope.FATAL, PermanentProviderError(
            f"SMTP TLS certificate rejected: {exc}", provider_code="tls"
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a socket timeout while reading a reply into "Connection unexpectedly closed".
        lost = "timeout" if isinstance(exc.__context__, TimeoutError) else "connection"
        return _Scope.CONNECTION, RetryableProviderError(f"SMTP connection lost: {exc}", provider_code=lost)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refusals = exc.recipients
        if any(code == 421 for code, _ in refusals.values()):
            return _Scope.CONNECTION, RetryableProviderError("SMTP server closing (421)", provider_code="421")
        code, resp = (refusals.get(to_addr) if to_addr else None) or next(iter(refusals.values()), (550, b"refused"))
        return _Scope.MESSAGE, _by_code(code, f"SMTP refused {to_addr}: {code} {_reply_text(resp)}")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        error = _by_code(exc.smtp_code, f"SMTP login failed: {exc.smtp_code} {_reply_text(exc.smtp_error)}")
        return _Scope.FATAL, error
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # While connecting: STARTTLS or AUTH missing. While sending: SMTPUTF8 needed for this address.
        scope = _Scope.FATAL if connecting else _Scope.MESSAGE
        return scope, PermanentProviderError(
            f"SMTP server lacks a needed extension: {exc}", provider_code="ext"
        )
    if isinstance(exc, smtplib.SMTPResponseException):  # SenderRefused, DataError, ConnectError, HeloError
        code, text = (
            exc.smtp_code,
            f"SMTP {type(exc).__name__}: {exc.smtp_code} {_reply_text(exc.smtp_error)}",
        )
        if code == 421 or code < 0:
            return _Scope.CONNECTION, RetryableProviderError(text, provider_code=str(code))
        if connecting:
            return _Scope.FATAL if code >= 500 else _Scope.CONNECTION, _by_code(code, text)
        return _Scope.MESSAGE, _by_code(code, text)
    if isinstance(exc, smtplib.SMTPException):
        if connecting:  # e.g. "No suitable authentication method found"
            return _Scope.FATAL, PermanentProviderError(f"SMTP setup failed: {exc}", provider_code="setup")
        return _Scope.MESSAGE, RetryableProviderError(f"SMTP error: {exc}", provider_code="smtp")
    if isinstance(exc, OSError):  # refused, reset, timed out (checked last: SMTPException is an OSError too)
        failed = "timeout" if isinstance(exc, TimeoutError) else "connection"
        return _Scope.CONNECTION, RetryableProviderError(f"SMTP connection failed: {exc}", provider_code=failed)
    # ValueError/UnicodeError while serializing: this message can never be sent as is.
    return _Scope.MESSAGE, PermanentProviderError(f"cannot encode email: {exc}", provider_code="encoding")


class SmtpEmailSender:
    """Sends emails over SMTP, one connection per batch.

    ``url``: see the module docstring. ``default_from_email``/``default_from_name`` apply when an email
    has none. ``message_id_domain`` defaults to the default From address's domain. ``ssl_context`` is used
    for STARTTLS and SMTPS (default: system trust store, hostname checked).
    """

    name = "smtp"

    def __init__(
        self,
        url: str,
        *,
        default_from_email: str,
        default_from_name: str | None = None,
        message_id_domain: str | None = None,
        timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = parse_smtp_url(url)
        if timeout is not None:
            self.config = dataclasses.replace(self.config, timeout=timeout)
        default_from = parse_address(default_from_email)
        if default_from is None:
            raise ValueError(f"invalid default From address {default_from_email!r}")
        self.default_from_email = default_from_email
        self.default_from_name = default_from_name
        # A fixed domain: make_msgid()'s default, socket.getfqdn(), is slow and wrong in containers (§7.1).
        self.message_id_domain = message_id_domain or default_from[1].rsplit("@", 1)[1]
        self.ssl_context = ssl_context
        self.clock = clock or SystemClock()

    # -- building ---------------------------------------------------------------------------------------

    def build(self, email: OutgoingEmail) -> PreparedEmail:
        """The MIME message and envelope for ``email``; PermanentProviderError if To or From is unusable."""
        to = parse_address(email.to)
        if to is None:
            raise PermanentProviderError(f"invalid To address {email.to!r}", provider_code="invalid_to")
        from_email = email.from_email or self.default_from_email
        sender = parse_address(from_email)
        if sender is None:
            raise PermanentProviderError(f"invalid From address {from_email!r}", provider_code="invalid_from")
        from_name = email.from_name or self.default_from_name
        skipped: list[dict[str, str]] = []

        msg = Message(policy=_WIRE)
        # A rendered subject may carry newlines from merge fields; headers cannot.
        msg["Subject"] = _unstructured("Subject", " ".join(email.subject.split()))
        msg["From"] = _address_header("From", [(from_name or sender[0], sender[1])])
        msg["To"] = _address_header("To", [to])

        cc = self._valid_list("cc", email.cc, skipped)
        bcc = self._valid_list("bcc", email.bcc, skipped)
        if cc:
            msg["Cc"] = _address_header("Cc", cc)
        # Bcc never goes into the headers: those recipients only appear in the envelope.
        if email.reply_to:
            reply_to = parse_address(email.reply_to)
            if reply_to is None:
                skipped.append({"field": "reply_to", "value": email.reply_to, "reason": "invalid address"})
            else:
                msg["Reply-To"] = _address_header("Reply-To", [reply_to])
        msg["Date"] = _Folded(format_datetime(self.clock.now()))
        message_id = self._message_id(email.message_id)
        msg["Message-ID"] = _Folded(message_id) if message_id.isascii() else _legacy("Message-ID", message_id)
        msg["Auto-Submitted"] = _AUTO_SUBMITTED  # RFC 3834: no vacation auto-replies to reminders
        self._custom_headers(msg, email.headers, skipped)

        if email.html:
            msg["MIME-Version"] = _MIME_VERSION
            msg["Content-Type"] = "multipart/alternative"  # the generator adds the boundary (and folds it)
            msg.attach(_set_text(Message(policy=_WIRE), email.text or "", "plain"))
            msg.attach(_set_text(Message(policy=_WIRE), email.html, "html"))
        else:  # a single text/plain part
            _set_text(msg, email.text or "", "plain")
            msg["MIME-Version"] = _MIME_VERSION

        recipients = [to[1]] + [a for _, a in cc] + [a for _, a in bcc]
        # One RCPT per address, even if the same person is in To and Cc.
        recipients = list(dict.fromkeys(recipients))
        return PreparedEmail(msg, sender[1], to[1], recipients, message_id, skipped)

    def _message_id(self, outbox_id: str) -> str:
        safe = _MSGID_UNSAFE.sub("-", outbox_id).strip(".") or "message"
        safe = re.sub(r"\.{2,}", ".", safe)
        return f"<punctual.{safe}@{self.message_id_domain}>"

    @staticmethod
    def _valid_list(
        kind: str, values: tuple[str, ...], skipped: list[dict[str, str]]
    ) -> list[tuple[str, str]]:
        out = []
        for value in values:
            parsed = parse_address(value)
            if parsed is None:
                skipped.append({"field": kind, "value": value, "reason": "invalid address"})
            else:
                out.append(parsed)
        return out

    @staticmethod
    def _custom_headers(msg: Message, headers: dict[str, str], skipped: list[dict[str, str]]) -> None:
        counts: dict[str, int] = {}  # structured headers accepted so far, for EmailMessage's at-most-N rule
        for name, value in headers.items():
            lowered = name.lower()
            if lowered in _RESERVED_HEADERS:
                skipped.append({"field": "header", "value": name, "reason": "reserved header"})
                continue
            if not _HEADER_NAME.match(name) or any(ch in str(value) for ch in "\r\n\0"):
                skipped.append({"field": "header", "value": name, "reason": "invalid header"})
                continue
            if lowered == "list-unsubscribe":
                normalized, one_click = _normalize_unsubscribe(str(value))
                if normalized is None:
                    skipped.append({"field": "header", "value": name, "reason": "no usable unsubscribe URI"})
                    continue
                # Literal URIs, folded only at the ", " between them: receivers do not decode encoded words here
                # (EmailMessage turned any URI over ~70 characters into them). Only past 998 octets would they be.
                msg["List-Unsubscribe"] = _unstructured("List-Unsubscribe", normalized)
                if one_click:
                    msg["List-Unsubscribe-Post"] = _ONE_CLICK
                continue
            try:
                if lowered in _STRUCTURED_HEADERS:
                    max_count = _DEFAULT.header_max_count(name)
                    if max_count and counts.get(lowered, 0) >= max_count:
                        raise ValueError(f"There may be at most {max_count} {name} headers in a message")
                    folded = _legacy(name, str(value))
                    counts[lowered] = counts.get(lowered, 0) + 1
                else:
                    folded = _unstructured(name, str(value))
            except (ValueError, TypeError) as exc:
                skipped.append({"field": "header", "value": name, "reason": f"rejected: {exc}"})
                continue
            if lowered.startswith(_DROPPED_PREFIX) or lowered in _DROPPED_HEADERS:
                continue  # accepted but never sent, as before (see _DROPPED_HEADERS)
            msg[name] = folded

    # -- sending ----------------------------------------------------------------------------------------

    def _open(self) -> smtplib.SMTP:
        cfg = self.config
        helo = cfg.helo or self.message_id_domain
        if cfg.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, local_hostname=helo, timeout=cfg.timeout, context=self._tls_context()
            )
        else:
            conn = smtplib.SMTP(cfg.host, cfg.port, local_hostname=helo, timeout=cfg.timeout)
        try:
            conn.ehlo()
            if cfg.security == "starttls":
                conn.starttls(context=self._tls_context())
                conn.ehlo()  # capabilities change after TLS (AUTH usually appears only now)
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        """Made once, and only for smtps:// or STARTTLS (loading the CA store costs milliseconds per batch)."""
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        return self.ssl_context

    @staticmethod
    def _close(conn: smtplib.SMTP | None, *, polite: bool) -> None:
        if conn is None:
            return
        try:
            if polite:
                conn.quit()
            else:
                conn.close()
        except (smtplib.SMTPException, OSError):
            conn.close()

    def send_batch(self, emails: list[OutgoingEmail]) -> list[SendResult | Exception]:
        """Send ``emails`` over one connection; one SendResult or ProviderError per email, in order."""
        return [outcome for _, outcome in self.send_each(emails)]

    def send_each(self, emails: list[OutgoingEmail],
                  proceed: Callable[[OutgoingEmail], bool] | None = None) -> Iterator[tuple[OutgoingEmail, SendResult | Exception]]:
        """Send ``emails`` over one connection, each only if ``proceed(email)`` still says so at that moment;
        yield ``(email, SendResult | ProviderError)`` as soon as the server has answered for it."""
        conn: smtplib.SMTP | None = None
        reconnects_left = 1
        given_up: ProviderError | None = None
        try:
            for email in emails:
                if proceed is not None and not proceed(email):
                    continue
                try:
                    prepared = self.build(email)
                except PermanentProviderError as exc:
                    yield email, exc
                    continue
                if given_up is not None:
                    yield email, _not_attempted(given_up)
                    continue
                data: bytes | None = None  # flattened once, even if a reconnect sends it again
                while True:
                    connecting = conn is None
                    try:
                        if conn is None:
                            conn = self._open()
                            connecting = False
                        if data is None:
                            _check_resent(prepared.message)
                            data = _wire_bytes(prepared.message)
                        refused = self._send(conn, prepared, data)
                    except (smtplib.SMTPException, OSError, ValueError, UnicodeError) as exc:
                        scope, error = _translate(exc, connecting=connecting, to_addr=prepared.to_addr)
                        # The error is returned, not raised: chain it as ``raise error from exc`` would.
                        error.__cause__ = exc
                        if scope == _Scope.MESSAGE:
                            yield email, error
                            break
                        self._close(conn, polite=False)
                        conn = None
                        if scope == _Scope.CONNECTION and reconnects_left > 0:
                            reconnects_left -= 1
                            continue  # reconnect and try this email again
                        given_up = error
                        yield email, error
                        break
                    yield email, self._result(prepared, refused)
                    break
        finally:
            self._close(conn, polite=True)

    @staticmethod
    def _send(conn: smtplib.SMTP, prepared: PreparedEmail, data: bytes) -> dict:
        """``sendmail`` with what ``send_message`` added: SMTPUTF8 when an envelope address is not ASCII
        (the message itself is 7-bit either way), refused without it."""
        options: tuple[str, ...] = ()
        if not "".join([prepared.envelope_from, *prepared.recipients]).isascii():
            if not conn.has_extn("smtputf8"):
                raise smtplib.SMTPNotSupportedError(
                    "One or more source or delivery addresses require internationalized email support,"
                    " but the server does not advertise the required SMTPUTF8 capability"
                )
            options = ("SMTPUTF8", "BODY=8BITMIME")
        return conn.sendmail(prepared.envelope_from, prepared.recipients, data, options)

    def _result(self, prepared: PreparedEmail, refused: dict) -> SendResult | ProviderError:
        refused_detail = {addr: [code, _reply_text(resp)] for addr, (code, resp) in (refused or {}).items()}
        if prepared.to_addr in refused_detail:
            # Some Cc/Bcc got it but the contact did not: the contact is what the step is about.
            code, text = refused_detail[prepared.to_addr]
            return _by_code(
                code, f"SMTP refused {prepared.to_addr}: {code} {text} (other recipients accepted)"
            )
        detail: dict = {
            "message_id": prepared.message_id,
            "recipients": [r for r in prepared.recipients if r not in refused_detail],
        }
        if prepared.skipped:
            detail["skipped"] = prepared.skipped
        if refused_detail:
            detail["refused"] = refused_detail
        return SendResult(provider=self.name, provider_id=prepared.message_id, status="sent", detail=detail)


def _check_resent(message: Message) -> None:
    """send_message() refused a message with several Resent-Date headers (a caller's custom headers)."""
    if len(message.get_all("Resent-Date", ())) > 1:
        raise ValueError("message has more than one 'Resent-' header block")


def _not_attempted(cause: ProviderError) -> ProviderError:
    error = type(cause)(
        f"not attempted: {cause.message}", provider_code=cause.provider_code, retry_after=cause.retry_after
    )
    error.__cause__ = cause
    return error
