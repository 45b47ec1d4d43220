"""The OpenAPI 3.1 document, generated from what is actually registered: every ``/api/v1`` rule in
the Flask url_map, each view's ``@doc`` metadata, and the marshmallow schemas that validate its
query and body. A small marshmallow → JSON Schema converter lives here (no extra dependency).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from marshmallow import RAISE, Schema, fields, missing, validate

from actions import STEP_TYPES
from automations.documents.workflow_schema import DocumentSchema
from triggers import TRIGGER_TYPES
from web.api import PREFIX
from web.api.common import Cursor, Scalar, StrictBoolean, Timestamp
from web.api.serialize import RESPONSE_SHAPES

_RULE_ARG = re.compile(r"<(?:([a-zA-Z_]+)(?:\([^)]*\))?:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
_SKIP_METHODS = {"HEAD", "OPTIONS"}
_ERROR_TEXT = {
    400: "Malformed request (not JSON, not an object, bad cursor)",
    401: "Missing or invalid API key",
    404: "No such resource in this location",
    409: "Conflicts with the current state",
    413: "Request body larger than 1 MiB",
    415: "Content-Type is not application/json",
    422: "Validation failed: `error.fields` maps JSON paths to reasons",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


class Converter:
    """marshmallow schemas → JSON Schema components (each schema class once, by name)."""

    def __init__(self) -> None:
        self.components: dict[str, dict] = {}

    def schema_ref(self, schema: Schema | type[Schema], name: str | None = None) -> dict:
        cls = schema if isinstance(schema, type) else type(schema)
        name = name or cls.__name__
        if name not in self.components:
            self.components[name] = {}  # placeholder first: nested schemas may refer back
            self.components[name] = self.object_schema(cls())
        return _ref(name)

    def object_schema(self, schema: Schema) -> dict:
        props: dict[str, dict] = {}
        required: list[str] = []
        for attr, field in schema.fields.items():
            if field.dump_only:
                continue
            key = field.data_key or attr
            props[key] = self.field(field)
            if field.required:
                required.append(key)
        out: dict[str, Any] = {"type": "object", "properties": props}
        if required:
            out["required"] = required
        if schema.unknown == RAISE:
            out["additionalProperties"] = False
        if schema.__doc__:
            out["description"] = " ".join(schema.__doc__.split())
        return out

    def field(self, field: fields.Field) -> dict:
        out = self._base(field)
        for validator in _validators(field):
            _apply_validator(out, validator)
        description = (field.metadata or {}).get("description")
        if description:
            out["description"] = description
        default = field.load_default
        if default is not missing and isinstance(default, str | int | float | bool):
            out["default"] = default
        if field.allow_none:
            out = _nullable(out)
        return out

    def _base(self, field: fields.Field) -> dict:
        if isinstance(field, fields.Nested):
            nested = field.nested if isinstance(field.nested, type | Schema) else field.schema
            return self.schema_ref(nested)
        if isinstance(field, fields.List):
            return {"type": "array", "items": self.field(field.inner)}
        if isinstance(field, fields.Dict):
            out: dict[str, Any] = {"type": "object"}
            if field.value_field is not None:
                out["additionalProperties"] = self.field(field.value_field)
            return out
        if isinstance(field, Timestamp | fields.DateTime):
            return {"type": "string", "format": "date-time"}
        if isinstance(field, fields.Email):
            return {"type": "string", "format": "email"}
        if isinstance(field, Cursor):
            return {"type": "string", "description": "next_cursor from the previous page"}
        if isinstance(field, fields.String):
            return {"type": "string"}
        if isinstance(field, fields.Integer):
            return {"type": "integer"}
        if isinstance(field, fields.Number):
            return {"type": "number"}
        if isinstance(field, StrictBoolean | fields.Boolean):
            return {"type": "boolean"}
        if isinstance(field, Scalar):
            return {"type": ["string", "number", "boolean", "null"]}
        return {}


def _validators(field: fields.Field) -> list:
    found = list(field.validators)
    # Our own and the engine's validators may be composed with And.
    flat: list = []
    while found:
        v = found.pop(0)
        if isinstance(v, validate.And):
            found[:0] = list(v.validators)
        else:
            flat.append(v)
    return flat


def _apply_validator(out: dict, v: Any) -> None:
    array = out.get("type") == "array"
    if isinstance(v, validate.Length):
        if v.equal is not None:
            v_min = v_max = v.equal
        else:
            v_min, v_max = v.min, v.max
        if v_min is not None:
            out["minItems" if array else "minLength"] = v_min
        if v_max is not None:
            out["maxItems" if array else "maxLength"] = v_max
    elif isinstance(v, validate.Range):
        if v.min is not None:
            out["minimum" if v.min_inclusive else "exclusiveMinimum"] = v.min
        if v.max is not None:
            out["maximum" if v.max_inclusive else "exclusiveMaximum"] = v.max
    elif isinstance(v, validate.OneOf):
        out["enum"] = list(v.choices)
    elif isinstance(v, validate.Equal):
        out["const"] = v.comparable
    elif isinstance(v, validate.Regexp):
        out["pattern"] = v.regex.pattern


def _nullable(schema: dict) -> dict:
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema.get("type")
    if isinstance(kind, str):
        schema = {**schema, "type": [kind, "null"]}
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
    return schema


# -- response shapes (serialize.RESPONSE_SHAPES notation) ----------------------------------------------

_SCALARS = {
    "string": {"type": "string"}, "integer": {"type": "integer"}, "boolean": {"type": "boolean"},
    "object": {"type": "object"}, "date-time": {"type": "string", "format": "date-time"}, "any": {},
}


def _shape_type(spec: Any) -> dict:
    if isinstance(spec, list):
        return {"type": "array", "items": _shape_type(spec[0])}
    nullable = spec.endswith("?")
    name = spec.rstrip("?")
    out = dict(_SCALARS[name]) if name in _SCALARS else _ref(name)
    return _nullable(out) if nullable else out


def shape_fields(name: str) -> dict[str, Any]:
    """A shape's fields with ``"...": "Base"`` expanded (for the document and for tests)."""
    out: dict[str, Any] = {}
    for key, spec in RESPONSE_SHAPES[name].items():
        if key == "...":
            out.update(shape_fields(spec))
        else:
            out[key] = spec
    return out


def _shape_components() -> dict[str, dict]:
    return {
        name: {
            "type": "object",
            "properties": {k: _shape_type(v) for k, v in shape_fields(name).items()},
            "required": list(shape_fields(name)),
        }
        for name in RESPONSE_SHAPES
    }


# -- the workflow document: steps and triggers typed by their registries -------------------------------


def _workflow_document(conv: Converter) -> dict:
    doc = conv.object_schema(DocumentSchema())
    steps = [conv.schema_ref(STEP_TYPES.get(n).schema, f"Step_{n}") for n in STEP_TYPES.names()]
    for name in STEP_TYPES.names():
        # Each step schema's ``type`` is a plain string: pin it so the oneOf is decidable.
        conv.components[f"Step_{name}"]["properties"]["type"] = {"const": name}
    triggers = []
    for name in TRIGGER_TYPES.names():
        filters = conv.schema_ref(TRIGGER_TYPES.get(name).filters_schema, f"TriggerFilters_{name}")
        triggers.append({
            "type": "object", "additionalProperties": False, "required": ["type"],
            "properties": {"type": {"const": name}, "name": {"type": "string", "maxLength": 200}, "filters": filters},
        })
    doc["properties"]["steps"]["items"] = {"oneOf": steps, "discriminator": {"propertyName": "type"}}
    doc["properties"]["triggers"]["items"] = {"oneOf": triggers}
    doc["description"] = ("A workflow document: triggers, then steps run in order. Errors are reported by JSON "
                          "path, e.g. steps[2].delay.amount.")
    return doc


# -- paths -------------------------------------------------------------------------------------------


def _operation(conv: Converter, rule, method: str, view) -> dict:
    meta = getattr(view, "__openapi__", None) or {}
    op: dict[str, Any] = {
        "operationId": f"{rule.endpoint.removeprefix('api.')}.{method.lower()}".replace(".", "_"),
        "summary": meta.get("summary") or rule.endpoint,
        "tags": [rule.endpoint.split(".")[1] if rule.endpoint.count(".") >= 2 else "meta"],
    }
    params = []
    for converter, name in _RULE_ARG.findall(rule.rule):
        schema = {"type": "integer"} if converter == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    query = meta.get("query")
    if query is not None:
        qs = query()
        for attr, field in qs.fields.items():
            params.append({"name": field.data_key or attr, "in": "query", "required": bool(field.required),
                           "schema": conv.field(field)})
    if params:
        op["parameters"] = params
    body = meta.get("body")
    if body is not None:
        ref = _ref("WorkflowDocument") if body is DocumentSchema else conv.schema_ref(body)
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    op["responses"] = _responses(meta, rule, has_body=body is not None, has_query=query is not None)
    if meta.get("public"):
        op["security"] = []
    return op


def _responses(meta: dict, rule, *, has_body: bool, has_query: bool) -> dict:
    status = str(meta.get("status", 200))
    name = meta.get("response")
    if meta.get("download"):
        ok = {"description": "The workflow document as a JSON file download",
              "headers": {"Content-Disposition": {"schema": {"type": "string"}}},
              "content": {"application/json": {"schema": _ref("WorkflowDocument")}}}
    elif status == "204":
        ok = {"description": "Done; no content"}
    elif name and meta.get("many"):
        ok = {"description": f"A page of {name} objects",
              "content": {"application/json": {"schema": {
                  "type": "object", "required": ["items", "next_cursor"],
                  "properties": {"items": {"type": "array", "items": _ref(name)},
                                 "next_cursor": {"type": ["string", "null"]}}}}}}
    elif name:
        ok = {"description": name, "content": {"application/json": {"schema": _ref(name)}}}
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    out: dict[str, Any] = {status: ok}
    codes = set(meta.get("errors") or ())
    if not meta.get("public"):
        codes.add(401)
    if "<" in rule.rule:
        codes.add(404)
    if has_body or rule.methods & {"POST", "PUT", "PATCH"}:
        codes |= {400, 413, 415, 422}
    if has_query:
        codes.add(422)
    for code in sorted(codes):
        out[str(code)] = {"description": _ERROR_TEXT.get(code, "Error"),
                          "content": {"application/json": {"schema": _ref("Error")}}}
    return out


def build_document(app: Flask) -> dict:
    cached = app.extensions.get("punctual.openapi")
    if cached is not None:
        return cached
    conv = Converter()
    conv.components["WorkflowDocument"] = _workflow_document(conv)
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(PREFIX + "/"):
            continue
        path = _RULE_ARG.sub(lambda m: "{" + m.group(2) + "}", rule.rule)
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - _SKIP_METHODS):
            paths.setdefault(path, {})[method.lower()] = _operation(conv, rule, method, view)
    components = {
        **_shape_components(),
        **conv.components,
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "fields": {"type": "object", "description": "JSON path → reasons",
                               "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                }}},
        },
    }
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Punctual API", "version": "1",
                 "description": "Appointment-aware workflow automation. Authenticate with "
                                "`Authorization: Bearer <API key>`; every request sees one location's data."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
    app.extensions["punctual.openapi"] = document
    return document
