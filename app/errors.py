"""Domain errors raised by services; they know nothing of HTTP (see app/problems.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class BurnbanError(Exception):
    """Base of every refusal a service can make. `slug` names the problem type."""

    slug = "validation"
    title = "Request could not be processed"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra


class ValidationFailed(BurnbanError):
    slug = "validation"
    title = "Validation failed"

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(detail, errors=list(errors or []))


class Unauthorized(BurnbanError):
    slug = "unauthorized"
    title = "Authentication required"


class Forbidden(BurnbanError):
    slug = "forbidden"
    title = "Not allowed"


class NotFound(BurnbanError):
    slug = "not-found"
    title = "Not found"


class Conflict(BurnbanError):
    slug = "conflict"
    title = "Conflict"


class OutsideGrid(BurnbanError):
    slug = "outside-grid"
    title = "Point is outside the grid"


class InvalidTransition(BurnbanError):
    slug = "invalid-transition"
    title = "Action not allowed in this state"


class IdempotencyMismatch(BurnbanError):
    slug = "idempotency-mismatch"
    title = "Idempotency key reused with a different request"


class PreconditionFailed(BurnbanError):
    slug = "precondition-failed"
    title = "Precondition failed"


class PayloadTooLarge(BurnbanError):
    slug = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaType(BurnbanError):
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class RateLimited(BurnbanError):
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class GridInvalid(BurnbanError):
    slug = "grid-invalid"
    title = "Grid is invalid"

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__(detail, errors=list(errors))


class Unavailable(BurnbanError):
    """The database, or the disk under it, cannot serve just now: retry after `retry_after`
    seconds (app/dbfaults.py says which failures are such)."""

    slug = "unavailable"
    title = "Temporarily unavailable"

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
