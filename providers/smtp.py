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
"""

from __future__ import annotations

import dataclasses
import re
import smtplib
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
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
    """A built message and its envelope; ``skipped`` lists what was left out and why."""

    message: EmailMessage
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

        msg = EmailMessage()
        # A rendered subject may carry newlines from merge fields; headers cannot.
        msg["Subject"] = " ".join(email.subject.split())
        msg["From"] = formataddr((from_name or sender[0], sender[1]))
        msg["To"] = formataddr(to)

        cc = self._valid_list("cc", email.cc, skipped)
        bcc = self._valid_list("bcc", email.bcc, skipped)
        if cc:
            msg["Cc"] = ", ".join(formataddr(a) for a in cc)
        # Bcc never goes into the headers: those recipients only appear in the envelope.
        if email.reply_to:
            reply_to = parse_address(email.reply_to)
            if reply_to is None:
                skipped.append({"field": "reply_to", "value": email.reply_to, "reason": "invalid address"})
            else:
                msg["Reply-To"] = formataddr(reply_to)
        msg["Date"] = format_datetime(self.clock.now())
        message_id = self._message_id(email.message_id)
        msg["Message-ID"] = message_id
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to reminders
        self._custom_headers(msg, email.headers, skipped)

        msg.set_content(email.text or "")
        if email.html:
            msg.add_alternative(email.html, subtype="html")

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
    def _custom_headers(msg: EmailMessage, headers: dict[str, str], skipped: list[dict[str, str]]) -> None:
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
                msg["List-Unsubscribe"] = normalized
                if one_click:
                    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
                continue
            try:
                msg[name] = str(value)
            except (ValueError, TypeError) as exc:
                skipped.append({"field": "header", "value": name, "reason": f"rejected: {exc}"})

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
                while True:
                    connecting = conn is None
                    try:
                        if conn is None:
                            conn = self._open()
                            connecting = False
                        refused = conn.send_message(
                            prepared.message, from_addr=prepared.envelope_from, to_addrs=prepared.recipients
                        )
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


def _not_attempted(cause: ProviderError) -> ProviderError:
    error = type(cause)(
        f"not attempted: {cause.message}", provider_code=cause.provider_code, retry_after=cause.retry_after
    )
    error.__cause__ = cause
    return error
