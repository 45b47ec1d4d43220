"""Merge fields: ``{{ contact.first_name }}`` and ``<< contact.first_name >>`` in message texts.

The two spellings are the same thing. A field is a case-sensitive dotted path, optionally followed by
filters from a short allowlist, the useful one being a fallback::

    Hi {{contact.first_name | default("there")}}, your link: <<appointment.meeting_location>>

Everything that is not a merge field is literal text. We never hand the user's text to Jinja as a
template: :func:`_scan` cuts it into literal segments and field expressions itself, so ``{% if %}``,
``{# ... #}`` or a lone ``{{`` in a message come out exactly as typed. Each field expression is parsed
by Jinja, checked against a whitelist of node types (names, dotted attribute paths, filters from the
allowlist, constant filter arguments) and only then compiled by an ``ImmutableSandboxedEnvironment``
with no globals, no tests and only the allowed filters, whose attribute lookup only descends into
plain dicts. Defence in depth: the whitelist alone keeps out ``{{ ''.__class__ }}``, ``{{ lipsum() }}``
and ``{{ 7*7 }}``; the sandbox and the dict-only lookup would still hold if the whitelist had a hole.

Rendering never raises on user text: an invalid field renders empty, a missing value renders empty
(unless ``default`` gives a fallback), and problems are reported ahead of time by :func:`validate`
(at workflow save and publish: invalid fields, an unclosed ``{{``, a ``{% tag %}``) and
:func:`unknown_paths`. Work is bounded: scanning is one linear pass (:func:`_scan`), texts are cut at
:data:`MAX_TEMPLATE_CHARS`, output at :data:`MAX_RENDERED_CHARS`, and the whitelist admits no loops,
calls or arithmetic, so a field costs one dict walk and its filters.

Value rendering: strings as is, numbers with ``str()``, booleans as ``true``/``false`` (so
``{{appointment.rescheduled}}`` reads ``true`` or ``false``), lists of scalars joined with ``", "``,
anything else (dicts, objects) as the empty string.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache, wraps
from typing import Any, NamedTuple

from jinja2 import Undefined, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.filters import FILTERS as _JINJA_FILTERS
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "ALLOWED_FILTERS",
    "MAX_FIELD_CHARS",
    "MAX_TEMPLATE_CHARS",
    "KnownPaths",
    "paths",
    "render",
    "suggestion",
    "unknown_paths",
    "uses_path",
    "validate",
]

#: Longest text we accept. validate() reports longer texts; render() only renders this much of them.
MAX_TEMPLATE_CHARS = 20_000

#: Longest single merge field (between its delimiters); real ones are a few dozen characters.
MAX_FIELD_CHARS = 500
#: Deepest dotted path (``appointment.user.email`` has 3 parts) and longest filter chain in one field.
MAX_PATH_PARTS = 8
MAX_FILTERS = 8

ALLOWED_FILTERS: tuple[str, ...] = ("default", "upper", "lower", "title", "capitalize", "trim", "truncate")

#: Longest rendered text: a value is never multiplied (there are no loops), but a long custom field
#: repeated in a long template still must not become a multi-megabyte message.
MAX_RENDERED_CHARS = 200_000

#: Openers and their closers. A field never spans lines, so an unclosed ``{{`` in one paragraph can
#: never swallow text up to a ``}}`` several lines further down.
_DELIMITERS = {"{{": "}}", "<<": ">>"}
# What makes an unclosed opener or a ``{%`` worth reporting: ``<<`` and ``{%`` also occur in plain
# prose ("50% off {%", "a << b"), a word after them is what a template would have.
_LOOKS_LIKE_FIELD = re.compile(r"\s*[A-Za-z_]")
_LOOKS_LIKE_TAG = re.compile(r"-?\s*[A-Za-z_]")
_MAX_STRAY_REPORTS = 5

_NOT_A_MERGE_FIELD = "only merge fields like {{ contact.first_name }} are allowed"
_CONSTANT_ARGUMENTS_ONLY = 'filter arguments must be plain text or numbers, like default("there")'


# -- fixed merge-field surface (DESIGN.md "Merge fields") ------------------------------------------

CONTACT_FIELDS: tuple[str, ...] = (
    "name",
    "first_name",
    "last_name",
    "email",
    "phone",
    "phone_raw",
    "timezone",
)
USER_FIELDS: tuple[str, ...] = ("name", "first_name", "last_name", "email", "phone", "timezone")
APPOINTMENT_FIELDS: tuple[str, ...] = (
    "title",
    "start_time",
    "only_start_date",
    "only_start_time",
    "end_time",
    "day_of_week",
    "month",
    "timezone",
    "meeting_location",
    "cancellation_link",
    "reschedule_link",
    "notes",
    "add_to_google_calendar",
    "rescheduled",
    "status",
)
CALENDAR_FIELDS: tuple[str, ...] = ("name",)
LOCATION_FIELDS: tuple[str, ...] = ("name", "email", "phone", "address", "website", "timezone")
RIGHT_NOW_FIELDS: tuple[str, ...] = ("date", "time", "day_of_week", "month", "year", "day")


def _fixed_paths() -> frozenset[str]:
    out: set[str] = set()
    for root, names in (
        ("contact", CONTACT_FIELDS),
        ("appointment", APPOINTMENT_FIELDS),
        ("appointment.user", USER_FIELDS),
        ("user", USER_FIELDS),
        ("calendar", CALENDAR_FIELDS),
        ("location", LOCATION_FIELDS),
        ("right_now", RIGHT_NOW_FIELDS),
    ):
        out.update(f"{root}.{name}" for name in names)
    return frozenset(out)


FIXED_PATHS: frozenset[str] = _fixed_paths()


@dataclass(frozen=True)
class KnownPaths:
    """What a location's texts may reference: the fixed fields plus its dynamic keys."""

    fixed: frozenset[str] = FIXED_PATHS
    #: Contact custom field keys, referenced as ``contact.<key>``.
    contact_custom_fields: frozenset[str] = field(default_factory=frozenset)
    #: Location custom value keys, referenced as ``custom_values.<key>``.
    custom_values: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_location(
        cls, custom_field_keys: Iterable[str] | None = (), custom_value_keys: Iterable[str] | None = ()
    ) -> KnownPaths:
        """From ``Location.custom_field_keys`` and the keys of ``Location.custom_values``."""
        return cls(
            contact_custom_fields=frozenset(str(k) for k in (custom_field_keys or ())),
            custom_values=frozenset(str(k) for k in (custom_value_keys or ())),
        )

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        if path in self.fixed:
            return True
        root, _, rest = path.partition(".")
        # Dynamic keys are one level deep: ``contact.promo.code`` is not ``contact.promo``.
        if root == "contact":
            return rest in self.contact_custom_fields
        if root == "custom_values":
            return rest in self.custom_values
        return False

    def all_paths(self) -> list[str]:
        """Every known path, sorted: what the builder offers in its merge-field picker."""
        dynamic = {f"contact.{k}" for k in self.contact_custom_fields}
        dynamic |= {f"custom_values.{k}" for k in self.custom_values}
        return sorted(self.fixed | dynamic)


# -- the sandbox --------------------------------------------------------------------------------------


def _default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """Jinja's ``default`` only replaces undefined values; a fallback here also covers ``None`` and
    ``""`` (a contact with an empty first name should still get "Hi there"). ``boolean`` is accepted
    for compatibility with Jinja's signature and additionally replaces any falsy value."""
    if isinstance(value, Undefined) or value is None or value == "":
        return default_value
    if boolean and not value:
        return default_value
    return value


class _MergeFieldEnvironment(ImmutableSandboxedEnvironment):
    """A sandbox that sees only the context's plain dicts: attribute lookup is dict lookup."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Never getattr(): ``contact.items`` must not reach dict methods, ``x.upper`` not str methods.
        if isinstance(obj, Mapping) and not attribute.startswith("_"):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return self.undefined(obj=obj, name=attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        # Getitem nodes are rejected by the whitelist; this is the backstop.
        if isinstance(argument, str):
            return self.getattr(obj, argument)
        return self.undefined(obj=obj, name=argument)


def _scalar_input(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a filter so it sees what a field would render, never a dict or list: otherwise
    ``{{ contact | upper }}`` would print the whole contact's repr. Missing values pass through
    untouched so ``default`` still sees them as missing."""
    # Filters marked @pass_environment get the environment first; wraps() copies that marker.
    index = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        value = args[index]
        if value is not None and not isinstance(value, Undefined):
            args = (*args[:index], _to_text(value), *args[index + 1 :])
        return func(*args, **kwargs)

    return wrapper


def _make_environment() -> _MergeFieldEnvironment:
    env = _MergeFieldEnvironment(autoescape=False)
    # No range/lipsum/cycler/joiner/namespace/dict: a name resolves only to what the context holds.
    env.globals.clear()
    env.tests.clear()
    env.filters = {name: _scalar_input(_JINJA_FILTERS[name]) for name in ALLOWED_FILTERS}
    env.filters["default"] = _scalar_input(_default)
    return env


_ENV = _make_environment()


# -- parsing and validation ---------------------------------------------------------------------------


class _Field(NamedTuple):
    """One merge field in a text."""

    raw: str  # as typed, delimiters included: used in problem messages
    source: str  # the expression between the delimiters
    path: str | None  # the dotted path it reads; None when invalid
    problem: str | None  # why it is invalid; None when valid
    evaluate: Callable[[Mapping[str, Any]], Any] | None  # compiled expression; None when invalid


def _path_of(node: nodes.Node) -> str | None:
    """The dotted path of a ``Name`` or a ``Getattr`` chain off a ``Name``; None otherwise."""
    parts: list[str] = []
    while isinstance(node, nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load":
        return None
    parts.append(node.name)
    if any(not p or p.startswith("_") for p in parts):
        return None
    return ".".join(reversed(parts))


def _is_constant(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and (
        node.value is None or isinstance(node.value, str | int | float | bool)
    )


def _check(expr: nodes.Node) -> tuple[str | None, str | None]:
    """(path, None) for an allowed expression, (None, reason) otherwise."""
    filters = 0
    while isinstance(expr, nodes.Filter):
        filters += 1
        if filters > MAX_FILTERS:
            return None, f"a merge field may use at most {MAX_FILTERS} filters"
        if expr.node is None:  # a filter block, impossible in an expression but cheap to refuse
            return None, _NOT_A_MERGE_FIELD
        if expr.name not in ALLOWED_FILTERS:
            return None, f"the filter {expr.name!r} is not allowed (allowed: {', '.join(ALLOWED_FILTERS)})"
        if expr.dyn_args is not None or expr.dyn_kwargs is not None:
            return None, _NOT_A_MERGE_FIELD
        if not all(_is_constant(arg) for arg in expr.args):
            return None, _CONSTANT_ARGUMENTS_ONLY
        for kw in expr.kwargs:
            if not isinstance(kw, nodes.Keyword) or not _is_constant(kw.value):
                return None, _CONSTANT_ARGUMENTS_ONLY
        expr = expr.node
    path = _path_of(expr)
    if path is None:
        return None, _NOT_A_MERGE_FIELD
    # Each level nests a call in the compiled Python, which refuses ~200 levels of parentheses.
    if path.count(".") + 1 > MAX_PATH_PARTS:
        return None, f"a merge field path may have at most {MAX_PATH_PARTS} parts"
    return path, None


@lru_cache(maxsize=8192)
def _compile_field(raw: str, source: str) -> _Field:
    """Parse, whitelist-check and compile one expression. Cached: texts repeat across messages."""
    if not source.strip():
        return _Field(raw, source, None, "an empty merge field", None)
    # Jinja's parser and compiler recurse: a bound on one field's length keeps hostile nesting
    # (``{{ ((((...)))) }}``, thousands of chained filters) far from the recursion limit.
    if len(source) > MAX_FIELD_CHARS:
        return _Field(raw, source, None, f"a merge field is limited to {MAX_FIELD_CHARS} characters", None)
    try:
        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("unexpected text after the field", parser.stream.current.lineno)
    except TemplateSyntaxError as exc:
        return _Field(raw, source, None, f"not a valid merge field ({exc.message or 'syntax error'})", None)
    except Exception as exc:  # RecursionError on hostile nesting: user text must never raise
        return _Field(raw, source, None, f"not a valid merge field ({type(exc).__name__})", None)
    path, problem = _check(expr)
    if path is None:  # exactly when there is a problem
        return _Field(raw, source, None, problem or _NOT_A_MERGE_FIELD, None)
    try:
        compiled = _ENV.compile_expression(source)
    except Exception as exc:  # the depth limits in _check() make this unreachable in practice
        return _Field(raw, source, None, f"not a valid merge field ({type(exc).__name__})", None)
    # Trial run with every path present, so a filter given unusable arguments (``truncate("x")``)
    # is reported at publish instead of silently rendering empty for every recipient.
    try:
        compiled(_sample_context(path))
    except Exception as exc:  # any failure here is a problem with the user's text
        return _Field(raw, source, None, f"this merge field cannot be rendered ({exc})", None)
    return _Field(raw, source, path, None, compiled)


def _sample_context(path: str) -> dict[str, Any]:
    """A context where ``path`` holds a sample string."""
    parts = path.split(".")
    value: Any = "Sample text"
    for part in reversed(parts[1:]):
        value = {part: value}
    return {parts[0]: value}


class _Scan(NamedTuple):
    """A text cut into pieces: literal segments (str) and fields, plus where it looks broken."""

    tokens: tuple[str | _Field, ...]
    #: (position, opener) of ``{{``/``<<`` that are never closed on their line.
    unclosed: tuple[tuple[int, str], ...]
    #: Position of the first ``{% tag`` (Jinja statements are not supported), or -1.
    tag_at: int


def _scan(text: str) -> _Scan:
    """Cut ``text`` into literal segments and fields in one left-to-right pass: linear time.

    Same result as the regex ``{{([^\\n]*?)}}|<<([^\\n]*?)>>`` (leftmost opener, nearest closer on its
    line), without its quadratic backtracking over thousands of unclosed openers: once an opener has
    no closer before the end of its line, neither has any later opener of that kind on the line, so
    the search for that kind resumes after the line.
    """
    out: list[str | _Field] = []
    unclosed: list[tuple[int, str]] = []
    n, pos = len(text), 0
    next_at = {opener: text.find(opener) for opener in _DELIMITERS}
    while True:
        for opener, at in next_at.items():
            if 0 <= at < pos:
                next_at[opener] = text.find(opener, pos)
        found = [(at, opener) for opener, at in next_at.items() if at >= 0]
        if not found:
            break
        start, opener = min(found)
        eol = text.find("\n", start)
        eol = n if eol < 0 else eol
        close = text.find(_DELIMITERS[opener], start + 2, eol)
        if close < 0:
            unclosed.append((start, opener))
            next_at[opener] = text.find(opener, eol) if eol < n else -1
            continue
        if start > pos:
            out.append(text[pos:start])
        out.append(_compile_field(text[start : close + 2], text[start + 2 : close]))
        pos = close + 2
    if pos < n:
        out.append(text[pos:])
    tag_at = -1
    at = text.find("{%")
    while at >= 0:
        if _LOOKS_LIKE_TAG.match(text, at + 2):
            tag_at = at
            break
        at = text.find("{%", at + 2)
    return _Scan(tuple(out), tuple(unclosed), tag_at)


@lru_cache(maxsize=1024)
def _scan_cached(text: str) -> _Scan:
    # Cached: the outbox renders the same few texts for thousands of recipients.
    return _scan(text)


def _tokenize(text: str) -> tuple[str | _Field, ...]:
    """Literal segments (str) and fields, in order."""
    return _scan_cached(text).tokens


def _snippet(text: str, at: int) -> str:
    eol = text.find("\n", at)
    line = text[at : eol if eol >= 0 else len(text)]
    return line[:40].rstrip() + ("…" if len(line) > 40 else "")


def _structure_problems(text: str) -> list[str]:
    """Unclosed fields and ``{% tags %}``: they would be sent literally, so they are errors."""
    scan = _scan_cached(text)
    problems = []
    reported = 0
    for at, opener in scan.unclosed:
        if opener == "<<" and not _LOOKS_LIKE_FIELD.match(text, at + 2):
            continue
        if reported == _MAX_STRAY_REPORTS:
            problems.append(f"{len(scan.unclosed) - reported} more unclosed merge fields")
            break
        reported += 1
        problems.append(f"{_snippet(text, at)}: this merge field is not closed with {_DELIMITERS[opener]} "
                        "on the same line")
    if scan.tag_at >= 0:
        problems.append(f"{_snippet(text, scan.tag_at)}: template tags such as {{% if %}} or {{% for %}} are not "
                        "supported; only merge fields like {{ contact.first_name }}")
    return problems


def _fields(text: str) -> Iterable[_Field]:
    return (tok for tok in _tokenize(text[:MAX_TEMPLATE_CHARS]) if isinstance(tok, _Field))


def validate(text: str | None) -> list[str]:
    """Human-readable problems with ``text``'s merge fields; empty when it is fine.

    Does not check that paths exist (that depends on the location): see :func:`unknown_paths`.
    """
    if not text:
        return []
    problems: list[str] = []
    if len(text) > MAX_TEMPLATE_CHARS:
        problems.append(f"the text is {len(text):,} characters long; the limit is {MAX_TEMPLATE_CHARS:,}")
    seen: set[str] = set()
    for fld in _fields(text):
        if fld.problem is not None and fld.raw not in seen:
            seen.add(fld.raw)
            problems.append(f"{fld.raw}: {fld.problem}")
    problems.extend(_structure_problems(text[:MAX_TEMPLATE_CHARS]))
    return problems


def paths(text: str | None) -> set[str]:
    """The dotted paths that ``text``'s valid merge fields reference."""
    if not text:
        return set()
    return {fld.path for fld in _fields(text) if fld.path is not None}


def uses_path(text: str | None, path: str) -> bool:
    """Whether ``text`` references ``path`` exactly (e.g. ``appointment.meeting_location``)."""
    return path in paths(text)


def unknown_paths(text_paths: Iterable[str], known: KnownPaths) -> list[str]:
    """The paths in ``text_paths`` that ``known`` does not define, sorted. Case matters:
    ``Contact.first_name`` is unknown."""
    return sorted({p for p in text_paths if p not in known})


def suggestion(path: str, known: KnownPaths) -> str | None:
    """A likely intended known path for an unknown one (``Contact.First_Name`` -> ``contact.first_name``),
    for friendlier publish errors; None when nothing is close."""
    candidates = known.all_paths()
    folded = {c.lower(): c for c in candidates}
    if path.lower() in folded:
        return folded[path.lower()]
    close = difflib.get_close_matches(path, candidates, n=1, cutoff=0.8)
    return close[0] if close else None


# -- rendering ----------------------------------------------------------------------------------------


def _to_text(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str.__str__(value)  # drop str subclasses such as Markup: escaping must not be skipped
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return ", ".join(_to_text(v) for v in value if not isinstance(v, Mapping | list | tuple))
    # Dicts (``{{ contact }}``) and anything else: never show Python reprs to recipients.
    return ""


def render(text: str | None, context: Mapping[str, Any], *, escape_html: bool = False) -> str:
    """Render ``text`` against ``context`` (plain dicts/strings/bools/numbers, as built by
    :mod:`automations.rendering.render_context`).

    Never raises on user text: invalid fields and missing values render empty. With ``escape_html``
    the substituted values are HTML-escaped; literal text is left alone (it is the author's HTML).
    A text over :data:`MAX_TEMPLATE_CHARS` is cut at the limit before rendering (validate() refuses
    such texts at publish, so this only bounds the work done on bad data).
    """
    if not text:
        return ""
    if len(text) > MAX_TEMPLATE_CHARS:
        text = text[:MAX_TEMPLATE_CHARS]
    out: list[str] = []
    size = 0
    for tok in _tokenize(text):
        if isinstance(tok, str):
            out.append(tok)
            size += len(tok)
            continue
        if tok.evaluate is None:
            continue
        try:
            value = tok.evaluate(context)
        except Exception:  # a bad value must not stop a message (see module docstring)
            value = None
        rendered = _to_text(value)
        if escape_html and rendered:
            rendered = html.escape(rendered, quote=True)
        out.append(rendered)
        size += len(rendered)
        if size > MAX_RENDERED_CHARS:
            break
    return "".join(out)[:MAX_RENDERED_CHARS]
