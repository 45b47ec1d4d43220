"""``X-Twilio-Signature`` verification (contract ``EXTERNAL_APIS.md`` §2.7).

Twilio signs ``url + sorted(name + value ...)`` with HMAC-SHA1 keyed by the auth token, where *url* is the
URL exactly as Twilio requested it. The HMAC itself is ``twilio.request_validator.RequestValidator``'s (it
also tries the URL with and without the default port, because Twilio's own signing is inconsistent
about it); what this module adds is getting *that URL* back on our side:

- behind a proxy or load balancer the app sees ``http://127.0.0.1:8000/...``; the public scheme and host
  come from a configured ``public_base_url`` (best) or from the WSGI environ, which Werkzeug's ``ProxyFix``
  (applied by ``web.app`` for ``PUNCTUAL_TRUSTED_PROXIES`` proxies) has already corrected from the
  ``X-Forwarded-*`` headers those proxies set;
- the query string must be the raw bytes Twilio sent: frameworks' ``request.url`` decodes percent-escapes
  (Werkzeug returns an IRI), so :func:`url_from_environ` prefers ``RAW_URI``/``REQUEST_URI``;
- for GET webhooks the parameters are already in the query string: sign with no params;
- repeated form fields are each included (pass a multidict or ``{name: [values]}``);
- JSON-bodied webhooks carry ``bodySHA256`` in the URL; pass the raw body string as ``params``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from twilio.request_validator import RequestValidator

from providers.headers import header

SIGNATURE_HEADER = "X-Twilio-Signature"
_DEFAULT_PORTS = {"http": "80", "https": "443"}

Params = Mapping[str, str] | Mapping[str, list[str]] | Mapping[str, tuple[str, ...]] | Any


class _MultiParams:
    """Adapts ``{name: value | [values]}`` to the ``getall`` interface RequestValidator understands."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __iter__(self):
        return iter(self._data)

    def getall(self, name: str) -> list[str]:
        value = self._data[name]
        if isinstance(value, list | tuple):
            return [str(v) for v in value]
        return [str(value)]


def _adapt_params(params: Params | str | None) -> Any:
    if params is None:
        return {}
    if isinstance(params, str):
        return params  # a JSON body, checked against bodySHA256
    if hasattr(params, "getall") or hasattr(params, "getlist"):
        return params  # multidicts (Werkzeug, Django, aiohttp) are understood natively
    if isinstance(params, Mapping):
        return _MultiParams(params)
    # An iterable of (name, value) pairs, e.g. urllib.parse.parse_qsl output.
    grouped: dict[str, list[str]] = {}
    for name, value in params:
        grouped.setdefault(name, []).append(value)
    return _MultiParams(grouped)


def _join_host(scheme: str, host: str, port: str | None) -> str:
    if port and ":" not in host.rsplit("]", 1)[-1] and _DEFAULT_PORTS.get(scheme) != port:
        return f"{host}:{port}"
    return host


def public_request_url(request_url: str, *, public_base_url: str | None = None) -> str:
    """The URL Twilio most likely signed, from the URL the app saw.

    Path and query string are kept byte for byte. ``public_base_url`` (e.g. ``https://app.example.com``)
    replaces scheme and host and, if it has a path the request path lacks, prefixes it (a proxy that strips
    a mount point).
    """
    parts = urllib.parse.urlsplit(request_url)
    scheme, netloc, path, query = parts.scheme, parts.netloc, parts.path, parts.query
    if public_base_url:
        base = urllib.parse.urlsplit(public_base_url)
        scheme, netloc = base.scheme, base.netloc
        prefix = base.path.rstrip("/")
        if prefix and not (path == prefix or path.startswith(prefix + "/")):
            path = prefix + path
    return urllib.parse.urlunsplit((scheme, netloc, path, query, ""))


def url_from_environ(environ: Mapping[str, Any], *, public_base_url: str | None = None) -> str:
    """The signed URL for a WSGI request (use it in Flask as ``url_from_environ(request.environ, ...)``)."""
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST")
    if not host:
        host = _join_host(
            scheme, environ.get("SERVER_NAME", "localhost"), str(environ.get("SERVER_PORT", ""))
        )
    elif host.endswith(f":{_DEFAULT_PORTS.get(scheme)}"):
        host = host.rsplit(":", 1)[0]  # ProxyFix adds the forwarded port even when it is the default
    script_name = environ.get("SCRIPT_NAME", "")
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        if "://" in raw.split("?", 1)[0]:  # absolute-form request target
            split = urllib.parse.urlsplit(raw)
            raw = split.path + ("?" + split.query if split.query else "")
        target = raw
        if script_name and not (target == script_name or target.startswith(script_name + "/")):
            target = script_name + target  # a mount point a trusted proxy stripped (X-Forwarded-Prefix)
        query = environ.get("QUERY_STRING", "")
        if query and "?" not in target:  # some servers (and Werkzeug's test builder) leave it out
            target += "?" + query
    else:
        # WSGI hands PATH_INFO over as latin-1-decoded bytes: undo that, then re-quote.
        path = (
            (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8")
        )
        target = urllib.parse.quote(path, safe="/!$&'()*+,;=:@%~")
        query = environ.get("QUERY_STRING", "")
        if query:
            target += "?" + query
    return public_request_url(f"{scheme}://{host}{target}", public_base_url=public_base_url)


def _candidate_urls(url: str) -> Iterable[str]:
    yield url
    # A URL holding raw non-ASCII (an IRI from a framework) was signed in its percent-encoded form.
    encoded = urllib.parse.quote(url, safe="/:?&=%#@!$'()*+,;[]~")
    if encoded != url:
        yield encoded


def compute_signature(auth_token: str, url: str, params: Params | None = None) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for this request (fakes and tests sign with it)."""
    return RequestValidator(auth_token).compute_signature(url, _adapt_params(params))


def verify_signature(auth_token: str, url: str, params: Params | str | None, signature: str | None) -> bool:
    """True when ``signature`` is Twilio's for ``url`` and ``params``.

    ``url`` must be the public URL (see :func:`public_request_url` / :func:`url_from_environ`); ``params``
    the POST form fields (``None`` for GET), or the raw body string for JSON webhooks.
    """
    if not auth_token or not signature:
        return False
    validator = RequestValidator(auth_token)
    adapted = _adapt_params(params)
    if isinstance(adapted, str) and "bodySHA256" not in urllib.parse.parse_qs(
        urllib.parse.urlsplit(url).query
    ):
        return False  # a raw body is only signed through bodySHA256; anything else is a caller mistake
    return any(validator.validate(candidate, adapted, signature) for candidate in _candidate_urls(url))


class TwilioSignatureVerifier:
    """Verification with the deployment's URL policy fixed once (auth token, public base URL)."""

    def __init__(self, auth_token: str, *, public_base_url: str | None = None) -> None:
        self.auth_token = auth_token
        self.public_base_url = public_base_url

    def verify(self, request_url: str, params: Params | str | None, headers: Mapping[str, str]) -> bool:
        """Check a request seen at ``request_url`` with these form ``params`` and HTTP ``headers``."""
        url = public_request_url(request_url, public_base_url=self.public_base_url)
        return verify_signature(self.auth_token, url, params, header(headers, SIGNATURE_HEADER))

    def verify_environ(self, environ: Mapping[str, Any], params: Params | str | None) -> bool:
        """Check a WSGI request (``request.environ``, ``request.form`` in Flask)."""
        url = url_from_environ(environ, public_base_url=self.public_base_url)
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE")
        return verify_signature(self.auth_token, url, params, signature)
