"""marshmallow field types shared by the API and the workflow document (ground: imports only marshmallow)."""

from __future__ import annotations

from typing import Any

from marshmallow import fields


class StrictBoolean(fields.Boolean):
    """Only JSON true/false: marshmallow's Boolean would take 1, "yes" and "on" (and 1 == True in a set)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value
