"""Security headers on every response: no MIME sniffing, never framed, no referrer beyond our origin,
HSTS only when the request came over HTTPS (as seen through the proxy), and a ``Server`` header
that names no software version."""

from __future__ import annotations

from flask import Flask, Response, request

HSTS = "max-age=31536000; includeSubDomains"
BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    # Set by the app so the WSGI server does not announce its own name and version.
    "Server": "Punctual",
}


def add_security_headers(response: Response) -> Response:
    for name, value in BASE_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
