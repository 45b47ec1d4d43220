"""What every API module shares: one transaction per request, strict JSON body and query parsing
(marshmallow errors become our ``ValidationError`` with field paths), cursor pagination, strict
field types, location-scoped lookups, waking the worker, and the ``@doc`` metadata the OpenAPI
document is generated from.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, TypeVar
from zoneinfo import available_timezones

from flask import current_app, g, request
from marshmallow import RAISE, Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import Select, and_, event, or_, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.routing import BaseConverter

from automations.clock import ensure_utc
from automations.documents.workflow_schema import flatten
from automations.errors import BadRequest, NotFound, ValidationError
from automations.json_fields import StrictBoolean as StrictBoolean  # re-exported for the resources
from automations.store.audit import record as record_audit
from automations.store.db import take_writer, transaction
from automations.store.models import Location
from web.auth import current_actor, current_location_id
from web.request_guard import MAX_JSON_DEPTH


class _Located(Protocol):
    """A row that belongs to one location."""

    @property
    def location_id(self) -> str | None: ...


T = TypeVar("T")
Row = TypeVar("Row", bound=_Located)

#: Where the API lives; every resource blueprint is nested under it.
PREFIX = "/api/v1"

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: Ids are 32 hex characters; a reference longer than this names nothing.
MAX_ID = 64
#: Datetimes outside these years are typos, and near datetime's limits arithmetic would overflow.
MIN_YEAR, MAX_YEAR = 1900, 2999


# -- request context -----------------------------------------------------------------------------


def _state() -> Any:
    """The app's ``PunctualState`` (``web.app``): found at run time, never imported from up there."""
    return current_app.extensions["punctual"]


@contextmanager
def tx(*, read_first: bool = False) -> Iterator[Session]:
    """The request's one transaction: everything commits together, or nothing does — including the
    audit line that records which key made the change (written when a request that may change
    anything did change rows). ``read_first``: it reads until ``store.db.take_writer`` (see
    ``store.db.transaction``), for a request whose reads before that decide nothing that could change.
    A GET is read-first always: on SQLite, reading a list or a page neither waits for a booking's write
    nor holds one up."""
    read_first = read_first or request.method in SAFE_METHODS
    with transaction(_state().factory, read_first=read_first) as session:
        changed = _watch_changes(session)
        yield session
        if request.method not in SAFE_METHODS:
            if read_first:
                take_writer(session)
            session.flush()
            if changed:
                _audit(session, changed)


def audit(action: str, entity_type: str, entity_id: str | None, summary: str) -> None:
    """An audit line for a change made outside the request's transaction (provider calls, e.g. Zoom)."""
    with tx() as session:
        record_audit(session, location_id=g.get("location_id"), actor=current_actor(), action=action,
                     entity_type=entity_type, entity_id=entity_id, at=now(), summary=summary)


#: Methods that never change anything (never audited).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Rows the engine writes as a side effect of a change; they describe it, they are not its subject.
_SIDE_TABLES = frozenset({"domain_events", "enrollment_logs", "audit_events", "rate_limit_counters"})


def _watch_changes(session: Session) -> list[tuple[str, str, str]]:
    """(table, row id, kind) of every row the session inserts, updates or deletes, in order."""
    seen: list[tuple[str, str, str]] = []

    def after_flush(sess: Session, _context: Any) -> None:
        # After the flush ids are assigned, and new/dirty/deleted still list what it wrote.
        for kind, rows in (("+", sess.new), ("~", sess.dirty), ("-", sess.deleted)):
            for row in rows:
                if kind == "~" and not sess.is_modified(row):
                    continue
                table = getattr(row, "__tablename__", type(row).__name__)
                if table not in _SIDE_TABLES:
                    seen.append((table, str(getattr(row, "id", "") or ""), kind))

    event.listen(session, "after_flush", after_flush)
    return seen


def _audit(session: Session, changed: list[tuple[str, str, str]]) -> None:
    endpoint = (request.endpoint or "").removeprefix("api.")
    resource = endpoint.split(".")[0]
    view_ids = [v for v in (request.view_args or {}).values() if isinstance(v, str)]
    subject = next(((t, i) for t, i, k in changed if k == "+" and t == resource), None) or \
        next(((t, i) for t, i, _k in changed if t == resource), None) or (changed[0][0], changed[0][1])
    entity_id = view_ids[0] if view_ids else subject[1] or None
    view = current_app.view_functions.get(request.endpoint or "")
    what = getattr(view, "__openapi__", {}).get("summary", endpoint)
    tally: dict[str, int] = {}
    for table, _id, kind in changed:
        tally[f"{table} {kind}"] = tally.get(f"{table} {kind}", 0) + 1
    summary = f"{what} ({', '.join(f'{k}{n}' for k, n in tally.items())})"
    record_audit(session, location_id=g.get("location_id"), actor=current_actor(), action=endpoint,
                 entity_type=resource if view_ids else subject[0], entity_id=entity_id, at=now(), summary=summary)


def now() -> datetime:
    return _state().clock.now()


def location(session: Session) -> Location:
    loc = session.get(Location, current_location_id())
    if loc is None:  # deleted while the request ran
        raise NotFound("location not found")
    return loc


def wake_worker() -> None:
    """After a write that created domain events: let an embedded worker tick now instead of on its
    next timer. Requests never run the engine inline (it would hold the request and its locks)."""
    wake = getattr(_state().runtime, "wake", None)
    if callable(wake):
        wake()


#: Columns that mark a row erased or deleted through the API (``automations.booking.privacy``).
_GONE_COLUMNS = ("erased_at", "deleted_at")


def _gone(obj: Any) -> bool:
    return any(getattr(obj, column, None) is not None for column in _GONE_COLUMNS)


def owned(session: Session, model: type[Row], obj_id: str, label: str | None = None) -> Row:
    """The row with this id in the caller's location; another location's row is a 404 like a missing one."""
    obj = session.get(model, obj_id) if obj_id and len(obj_id) <= MAX_ID else None
    if obj is None or obj.location_id != current_location_id() or _gone(obj):
        raise NotFound(f"no {label or model.__name__.lower()} {obj_id!r}")
    return obj


# -- strict field types --------------------------------------------------------------------------


class QueryBoolean(fields.Boolean):
    """A boolean in a query string: exactly ``true`` or ``false`` (not 1, yes, on)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={"true"}, falsy={"false"}, **kwargs)


class Timestamp(fields.AwareDateTime):
    """ISO 8601 with a UTC offset (``Z`` or ``-05:00``), returned as aware UTC. A naive time is
    refused: we would have to guess its zone, and guessing wrong sends a reminder an hour off."""

    default_error_messages = {
        "invalid": "must be an ISO 8601 date-time with a UTC offset, e.g. 2026-11-05T15:00:00-05:00",
        "invalid_awareness": "must include a UTC offset (e.g. Z or -05:00): a time without one is ambiguous",
        "range": f"must be between the years {MIN_YEAR} and {MAX_YEAR}",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise self.make_error("range")
        return ensure_utc(parsed)


class Scalar(fields.Field):
    """A JSON string, number, boolean or null (custom field values: merge fields render scalars)."""

    default_error_messages = {"invalid": "must be a string, number, boolean or null"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is not None and not isinstance(value, str | int | float | bool):
            raise self.make_error("invalid")
        return value


class KnownTimeZone(validate.Validator):
    """One of the IANA zone names this Python knows. (Not ``OneOf``: the document would list ~600 names.)"""

    names = frozenset(available_timezones())

    def __call__(self, value: str) -> str:
        if value not in self.names:
            raise MarshmallowError(f"unknown time zone {value!r}: use an IANA name like America/New_York")
        return value


def TimeZone(**kwargs: Any) -> fields.String:
    """An IANA time zone name (``America/New_York``)."""
    return fields.String(validate=KnownTimeZone(), metadata={
        "description": "an IANA time zone name, e.g. America/New_York (unknown names are a 422)",
        "pattern": r"^[A-Za-z]+(?:/[A-Za-z0-9_+-]+){0,2}$",
    }, **kwargs)


def Id(**kwargs: Any) -> fields.String:
    """A reference to a row by id (named like a field type, since it is used as one)."""
    return fields.String(validate=validate.Length(min=1, max=MAX_ID), **kwargs)


class IdConverter(BaseConverter):
    """``<id:...>`` in a route: a row id, never a sibling route's fixed word, so ``GET /workflows/import``
    is a 405 naming ``POST`` (with ``Allow``) rather than a 404 for a workflow called "import"."""

    regex = r"(?!import(?![^/]))[^/]+"


class Cursor(fields.Field):
    """An opaque page cursor: base64url of ``[created_at, id]`` of the last row returned."""

    default_error_messages = {"invalid": "not a cursor returned by this API"}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> tuple[datetime, str] | None:
        if value == "":  # ``cursor=``: a client that templates the URL before it has a cursor
            return None
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            at, row_id = json.loads(raw)
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None or not isinstance(row_id, str):
                raise ValueError
            return moment.astimezone(UTC), row_id
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
            raise self.make_error("invalid") from None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([ensure_utc(created_at).isoformat(), row_id]).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class BodySchema(Schema):
    """Request bodies: a misspelt field is an error naming it, never silently dropped."""

    class Meta:
        unknown = RAISE


class QuerySchema(Schema):
    class Meta:
        unknown = RAISE


class PageQuery(QuerySchema):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT))
    cursor = Cursor(load_default=None)


# -- parsing ----------------------------------------------------------------------------------------


def _summary(problems: dict[str, list[str]], limit: int = 3) -> str:
    parts = [f"{path}: {'; '.join(reasons)}" for path, reasons in list(problems.items())[:limit]]
    more = len(problems) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def load(schema: Schema, data: Any, *, what: str = "request body", prefix: str = "") -> dict:
    """Validate with marshmallow; errors become a 422 naming each field path."""
    try:
        return schema.load(data)
    except MarshmallowError as exc:
        problems = flatten(exc.messages, prefix)
        raise ValidationError(f"invalid {what}: {_summary(problems)}", fields=problems) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # ``1e400`` parses as infinity, which JSON cannot carry back out (and PostgreSQL's json refuses).
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:20]}{'...' if len(text) > 20 else ''} is out of range")
    return value


def _check_tree(data: Any) -> None:
    """Refuse what JSON allows but our storage does not: NUL characters and unpaired surrogates
    in strings (PostgreSQL rejects both), and absurd nesting. Iterative, so depth can't recurse."""
    stack: list[tuple[Any, str, int]] = [(data, "$", 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadRequest(f"request body is nested more than {MAX_JSON_DEPTH} levels deep")
        if isinstance(node, dict):
            for key, value in node.items():
                child = key if path == "$" else f"{path}.{key}"
                _check_text(key, child)
                stack.append((value, child, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, f"{path}[{i}]", depth + 1) for i, value in enumerate(node))
        elif isinstance(node, str):
            _check_text(node, path)


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise ValidationError.single(path, "must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError.single(path, "contains an unpaired UTF-16 surrogate") from None


@cache
def schema_of(cls: type[Schema]) -> Schema:
    """One instance per schema class, reused by every request (building one copies all its fields;
    loading does not change it, so threads can share it)."""
    return cls()


def json_body(schema: type[Schema] | None = None, *, optional: bool = False) -> dict:
    """The request's JSON object body, validated by the ``schema`` class when given.

    ``optional``: an empty body counts as ``{}`` (action endpoints like publish or cancel).
    """
    raw = request.get_data(cache=True)  # werkzeug raises 413 past MAX_CONTENT_LENGTH
    if not raw.strip():
        if not optional:
            raise BadRequest("a JSON object request body is required", fields={"$": ["required"]})
        data: Any = {}
    else:
        if not request.is_json:
            raise UnsupportedMediaType(
                f"Content-Type must be application/json (got {request.mimetype or 'none'!r})"
            )
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant, parse_float=_finite_float)
        except UnicodeDecodeError:
            raise BadRequest("request body is not UTF-8") from None
        except RecursionError:
            raise BadRequest("request body is nested too deeply") from None
        except ValueError as exc:
            raise BadRequest(f"request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            kind = "an array" if isinstance(data, list) else f"a {type(data).__name__}"
            raise BadRequest(f"request body must be a JSON object, not {kind}",
                             fields={"$": ["must be a JSON object"]})
        _check_tree(data)
    return load(schema_of(schema), data) if schema is not None else data


def query_args(schema: type[Schema]) -> dict:
    """The query string validated by ``schema``: unknown or repeated parameters are 422s naming them."""
    data: dict[str, str] = {}
    problems: dict[str, list[str]] = {}
    for key, values in request.args.lists():
        if len(values) > 1:
            problems[key] = ["given more than once"]
        elif "\x00" in key or "\x00" in values[0]:
            problems[key] = ["must not contain NUL characters"]
        else:
            data[key] = values[0]
    if problems:
        raise ValidationError(f"invalid query parameters: {_summary(problems)}", fields=problems)
    return load(schema_of(schema), data, what="query parameters")


# -- lists ------------------------------------------------------------------------------------------


def paginate(session: Session, query: Select, model: Any, page: dict, *, newest_first: bool = False) -> tuple[list, str | None]:
    """One page of ``query`` ordered by (created_at, id), and the cursor for the next page (or None).

    Keyset pagination: a row inserted while a client pages never shifts or repeats the others.
    """
    limit: int = page["limit"]
    cursor = page.get("cursor")
    at_col, id_col = model.created_at, model.id
    if cursor:
        at, last_id = cursor
        if newest_first:
            query = query.where(or_(at_col < at, and_(at_col == at, id_col < last_id)))
        else:
            query = query.where(or_(at_col > at, and_(at_col == at, id_col > last_id)))
    order = (at_col.desc(), id_col.desc()) if newest_first else (at_col.asc(), id_col.asc())
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    next_cursor = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def scoped(model: Any) -> Select:
    """``select(model)`` limited to the caller's location (erased or deleted rows left out): the start of
    every list query."""
    query = select(model).where(model.location_id == current_location_id())
    for column in _GONE_COLUMNS:
        if hasattr(model, column):
            query = query.where(getattr(model, column).is_(None))
    return query


def page(items: list[dict], next_cursor: str | None) -> dict:
    return {"items": items, "next_cursor": next_cursor}


# -- OpenAPI metadata --------------------------------------------------------------------------------


def doc(summary: str, *, body: Schema | type[Schema] | None = None, query: type[Schema] | None = None,
        response: type[Schema] | str | None = None, many: bool = False, status: int = 200, public: bool = False,
        download: bool = False, errors: tuple[int, ...] = (), body_optional: bool = False) -> Callable[[T], T]:
    """Describe a view for ``web.openapi``: its request body and query schemas, and what it returns.

    ``response`` is a schema of ``web.api.responses`` (or its name without ``Out``); ``many`` wraps it
    in a page. ``body_optional``: the body may be left out (action endpoints: publish, cancel).
    """

    def decorate(view: T) -> T:
        view.__openapi__ = {  # type: ignore[attr-defined]
            "summary": summary, "body": body, "query": query, "response": response, "many": many,
            "status": status, "public": public, "download": download, "errors": errors,
            "body_optional": body_optional,
        }
        return view

    return decorate
