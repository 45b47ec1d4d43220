"""Hostile input refused before any view runs, for every route (API, provider webhooks, pages):

* JSON nested deeper than ``MAX_JSON_DEPTH`` (a 10,000-deep body would exhaust the parser's recursion);
* NUL characters in query parameters and form fields (PostgreSQL refuses them in text; no field of ours
  ever needs one).

Each is a 4xx naming what is wrong (400 for the shape of the body, 422 naming the field). The depth check is linear in the body: strings are skipped with one
regex, then only brackets are counted.
"""

from __future__ import annotations

import re

from flask import Flask, request

from automations.errors import BadRequest, ValidationError

#: Deeper JSON than this is an attack or a bug: workflow documents nest about six levels.
MAX_JSON_DEPTH = 64

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BRACKET = re.compile(rb"[\[\]{}]")
_FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in ``raw``, brackets inside strings not counted."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _looks_like_json(raw: bytes) -> bool:
    head = raw.lstrip()[:1]
    return head in (b"{", b"[")


def _check_no_nul(kind: str, items) -> None:
    for key, value in items:
        if "\x00" in key or "\x00" in value:
            raise ValidationError(f"{kind} {key.replace(chr(0), '')!r} must not contain NUL characters",
                                  fields={key.replace("\x00", "\\u0000"): ["must not contain NUL characters"]})


def guard() -> None:
    _check_no_nul("query parameter", request.args.items(multi=True))
    if request.mimetype in _FORM_TYPES:
        _check_no_nul("form field", request.form.items(multi=True))
        return
    raw = request.get_data(cache=True)  # werkzeug refuses bodies over MAX_CONTENT_LENGTH with a 413
    # Any body that parses as JSON is checked, whatever its Content-Type claims.
    if raw and _looks_like_json(raw) and json_depth(raw) > MAX_JSON_DEPTH:
        raise BadRequest(f"request body is nested more than {MAX_JSON_DEPTH} levels deep")


def init_app(app: Flask) -> None:
    app.before_request(guard)
