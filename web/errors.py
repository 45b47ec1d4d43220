"""JSON error responses for every failure, in one shape:

    {"error": {"code": "validation_error", "message": "...", "fields": {"steps[0].subject": ["..."]}}}

Our own errors (``automations.errors.PunctualError``) answer with their ``status_code``; werkzeug's
HTTP errors (404, 405, 413, 415, bad JSON) keep their status; anything else is a bug: it is logged
with its traceback and answered with a bare 500 that reveals nothing about the internals.
"""

from __future__ import annotations

import re

from flask import Flask, Response, current_app, jsonify
from werkzeug.exceptions import HTTPException

from automations.errors import PunctualError

#: Codes a client can switch on, for the HTTP errors werkzeug raises itself.
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}


def error_response(status: int, code: str, message: str, fields: dict[str, list[str]] | None = None) -> Response:
    body: dict = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    response = jsonify({"error": body})
    response.status_code = status
    if status == 401:
        # RFC 6750: tell the client which scheme we expect.
        response.headers["WWW-Authenticate"] = 'Bearer realm="punctual"'
    return response


def _punctual(exc: PunctualError) -> Response:
    response = error_response(exc.status_code, exc.code, exc.message or exc.code.replace("_", " "), exc.fields)
    retry_after = getattr(exc, "retry_after", None)  # web.ratelimit.RateLimited
    if retry_after is not None:
        response.headers["Retry-After"] = str(int(retry_after))
    return response


def _http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = _HTTP_CODES.get(status) or re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
    response = error_response(status, code, exc.description or exc.name or "error")
    valid_methods = getattr(exc, "valid_methods", None)  # MethodNotAllowed: keep its Allow header
    if valid_methods:
        response.headers["Allow"] = ", ".join(sorted(valid_methods))
    return response


def _unexpected(exc: Exception) -> Response:
    # Bad input must never get here: every 500 is a bug worth a traceback in the log.
    current_app.logger.exception("unhandled error: %s", exc)
    return error_response(500, "internal_error", "internal server error")


def register(app: Flask) -> None:
    app.register_error_handler(PunctualError, _punctual)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
