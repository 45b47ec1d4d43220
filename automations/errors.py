"""Every error Punctual raises on purpose, in one place.

Vendor exceptions (httpx, twilio, SQLAlchemy) are translated into these at the boundary with
``raise ... from``, so callers only ever catch our types. Each carries the HTTP status the web layer
answers with, and validation errors carry field paths (``steps[2].delay.amount``) with reasons.
"""

from __future__ import annotations


class PunctualError(Exception):
    """Base for all of Punctual's own errors."""

    status_code = 500
    code = "error"

    def __init__(self, message: str = "", *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}

    def to_dict(self) -> dict:
        body: dict = {"code": self.code, "message": self.message}
        if self.fields:
            body["fields"] = self.fields
        return body


class ValidationError(PunctualError):
    """Input that breaks a rule; ``fields`` maps a JSON path to its reasons."""

    status_code = 422
    code = "validation_error"

    @classmethod
    def single(cls, path: str, reason: str) -> ValidationError:
        return cls(f"{path}: {reason}", fields={path: [reason]})


class BadRequest(PunctualError):
    status_code = 400
    code = "bad_request"


class NotFound(PunctualError):
    status_code = 404
    code = "not_found"


class Conflict(PunctualError):
    """The request is well formed but clashes with current state (slot full, already connected)."""

    status_code = 409
    code = "conflict"


class Unauthorized(PunctualError):
    status_code = 401
    code = "unauthorized"


class Forbidden(PunctualError):
    status_code = 403
    code = "forbidden"


class UnknownType(PunctualError):
    """A registry was asked for a step or trigger type it does not hold."""

    status_code = 422
    code = "unknown_type"

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"unknown {kind} type {name!r}")
        self.kind = kind
        self.name = name


class DuplicateType(PunctualError):
    """Two modules tried to register the same type name."""

    code = "duplicate_type"


class ProviderError(PunctualError):
    """A provider call failed. ``retryable`` says whether delivery may try again."""

    status_code = 502
    code = "provider_error"

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        provider_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.provider_code = provider_code
        self.retry_after = retry_after


class RetryableProviderError(ProviderError):
    def __init__(self, message: str, **kw) -> None:
        super().__init__(message, retryable=True, **kw)


class PermanentProviderError(ProviderError):
    def __init__(self, message: str, **kw) -> None:
        super().__init__(message, retryable=False, **kw)


class StepLimitExceeded(PunctualError):
    """An enrollment ran too many steps without waiting: almost surely a goto loop."""

    code = "step_limit"
